//! Test support for the channel kit and the channel plugins (feature `testing`): a PKI, CMS
//! signing, a fake host, and builders for the protocol's requests. Nothing here is built into a
//! plugin: the plugins enable the feature for their tests only.

pub mod cms;
pub mod fake_host;
pub mod pki;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use nesca_plugin_api::{HttpRequest, HttpResponse};
use serde_json::{json, Value};

pub use fake_host::{
    certificate_info, issued, wrapped_key, FakeHost, FakeState, ISSUED_SERIAL, TRANSPORT_KEY,
};
pub use pki::{
    LeafSpec, Pki, TestCa, TestCert, KDHS_LICENCE, KEC_OPERATOR, NOW, OTHER_KDHS_LICENCE,
    OTHER_TCKN, TCKN,
};
/// keyUsage, for a [`LeafSpec`] with a key usage of its own.
pub use x509_cert::ext::pkix::{KeyUsage, KeyUsages};

use crate::client::ClientCertificate;
use crate::clock::{Clock, FixedClock};
use crate::config::{CommonConfig, FirmwareDigests};
use crate::error::ChannelError;
use crate::host::HostCalls;
use crate::kdbo::Kdbo;
use crate::pem::to_pem;
use crate::policy::ChannelPolicy;
use crate::Channel;

/// The approved firmware digest of the tests' configuration.
pub const FIRMWARE: &str = "5d41402abc4b2a76b9719d911017c592aaf1b8a9c2a3d8d3c1f6a2b0e9d8c7b6";

/// A POST of `body` (JSON) to `path` with the TLS client chain `client`.
pub fn post(path: &str, body: &Value, client: Vec<Vec<u8>>) -> HttpRequest {
    HttpRequest {
        method: "POST".into(),
        path: path.into(),
        query: None,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
        client_cert_chain: client,
    }
}

/// Bytes as the protocol writes them: standard base64 with padding.
pub fn b64(bytes: &[u8]) -> String {
    crate::answer::b64(bytes)
}

/// The JSON body of an answer.
pub fn body_json(response: &HttpResponse) -> Value {
    serde_json::from_slice(&response.body).expect("a JSON answer")
}

/// A KDB v1 for the applicant ([`TCKN`]), verified a minute before [`NOW`].
pub fn kdb(purpose: &str) -> Value {
    json!({"v":1,"kdb_id":"kdb-0001","purpose":purpose,"tckn":TCKN,
           "verified_at":NOW - 60,"method":"id-card-pin"})
}

/// Writes `certificates` as a PEM file `file` in `dir`; its path.
pub fn write_pem(dir: &Path, file: &str, certificates: &[Vec<u8>]) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, to_pem(certificates)).expect("write the PEM file");
    path
}

/// The configuration both channels share, as the tests use it: the identity-card root and
/// [`FIRMWARE`].
pub fn common_config() -> CommonConfig {
    CommonConfig {
        idcard_ca: vec![Pki::get().idcard_root.cert.clone()],
        firmware: FirmwareDigests::parse("firmware_sha256", &[FIRMWARE.into()])
            .expect("a good digest"),
        kdb_max_age_minutes: 15,
    }
}

/// A policy for the kit's own tests: any secure-communication client, KDBOs signed under
/// [`Pki::kdhs_root`].
pub struct AnchorPolicy;

impl ChannelPolicy for AnchorPolicy {
    fn name(&self) -> &'static str {
        "test"
    }

    fn check_client(&self, _client: &ClientCertificate) -> Result<(), ChannelError> {
        Ok(())
    }

    fn check_kdbo_signer(
        &self,
        kdbo: &Kdbo,
        _client: &ClientCertificate,
        _host: &dyn HostCalls,
        now: i64,
    ) -> Result<(), ChannelError> {
        kdbo.verify_signer_path(
            &[Pki::get().kdhs_root.cert.clone()],
            now,
            None,
            "a test anchor",
        )
    }

    fn serves_lifecycle(&self) -> bool {
        true
    }
}

/// How a channel plugin builds its channel from its configuration (`nesca_plugin_kdhs::channel`,
/// `nesca_plugin_kec::channel`).
pub type BuildChannel =
    fn(Value, Arc<dyn HostCalls>, Arc<dyn Clock>) -> Result<Channel, ChannelError>;

/// Why `build` refuses `config` (the error's message).
pub fn config_refusal(build: BuildChannel, config: Value) -> String {
    match Fixture::from_config(build, config) {
        Ok(_) => panic!("the configuration was accepted"),
        Err(e) => e.to_string(),
    }
}

/// A channel with a fake host at [`NOW`], and builders for its requests.
pub struct Fixture {
    pub channel: Channel,
    pub host: Arc<FakeHost>,
}

impl Default for Fixture {
    fn default() -> Self {
        Fixture::new()
    }
}

impl Fixture {
    /// A channel with [`AnchorPolicy`].
    pub fn new() -> Fixture {
        Fixture::with_policy(Box::new(AnchorPolicy))
    }

    /// A channel with `policy` and [`common_config`].
    pub fn with_policy(policy: Box<dyn ChannelPolicy>) -> Fixture {
        let host = Arc::new(FakeHost::new());
        let channel = Channel::new(
            policy,
            common_config(),
            host.clone(),
            Arc::new(FixedClock(NOW)),
        );
        Fixture { channel, host }
    }

    /// The channel `build` makes of `config`, with a fake host at [`NOW`].
    pub fn from_config(build: BuildChannel, config: Value) -> Result<Fixture, ChannelError> {
        let host = Arc::new(FakeHost::new());
        let channel = build(config, host.clone(), Arc::new(FixedClock(NOW)))?;
        Ok(Fixture { channel, host })
    }

    /// Posts `body` to `path` (after `/channels/{name}`) with the TLS client chain `client`; the
    /// answer's status and JSON.
    pub fn call(&self, path: &str, body: &Value, client: Vec<Vec<u8>>) -> (u16, Value) {
        let r = self.channel.handle(&post(path, body, client));
        (r.status, body_json(&r))
    }

    /// The KDHS's TLS client chain.
    pub fn kdhs_client(&self) -> Vec<Vec<u8>> {
        let pki = Pki::get();
        vec![pki.kdhs_tls.cert.clone(), pki.nesca_issuing.cert.clone()]
    }

    /// The KEC operator's TLS client chain.
    pub fn kec_client(&self) -> Vec<Vec<u8>> {
        let pki = Pki::get();
        vec![pki.kec_tls.cert.clone(), pki.nesca_issuing.cert.clone()]
    }

    /// `kdb` signed by the KDHS (with its intermediate).
    pub fn kdhs_kdbo(&self, kdb: &Value) -> Vec<u8> {
        let pki = Pki::get();
        pki.kdhs_signer.sign_attached(
            kdb.to_string().as_bytes(),
            std::slice::from_ref(&pki.kdhs_sub.cert),
        )
    }

    /// `kdb` signed by the KEC device's role certificate (with nesca's issuing CA).
    pub fn kec_kdbo(&self, kdb: &Value) -> Vec<u8> {
        let pki = Pki::get();
        pki.kec_role.sign_attached(
            kdb.to_string().as_bytes(),
            std::slice::from_ref(&pki.nesca_issuing.cert),
        )
    }

    /// An application body around `kdbo`: the applicant's authentication certificate and its
    /// intermediate, [`FIRMWARE`], a CSR.
    pub fn application_body_with(&self, kdbo: &[u8]) -> Value {
        let pki = Pki::get();
        json!({"v":1,"kdbo":b64(kdbo),"firmware_sha256":FIRMWARE,"validity_days":730,
               "auth_certificate":b64(&pki.auth.cert),"auth_chain":[b64(&pki.idcard_sub.cert)],
               "key":{"csr":"MIIBCg=="}})
    }

    /// A good application body, its KDBO signed by the KDHS.
    pub fn application_body(&self) -> Value {
        self.application_body_with(&self.kdhs_kdbo(&kdb("application")))
    }
}
