//! The world around one demo CA for the identity-card channels: outside CAs, a KDHS, the
//! partners nesca registers (a licensed KDHS, an unlicensed one, a KEC operator and its
//! devices' role certificates, another operator), and the `[channels]` and `[[plugins]]`
//! configuration.

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use super::channel_client::ChannelClient;
use super::kdbo::{cms_sign, CardCsr, Content, Kdb, Signer};
use super::person::Person;
use super::test_ca::{TestCa, SIGNER_EXT};
use crate::support::demo::{single_serial_line, Demo};
use crate::support::encoding::sha256_hex;
use crate::support::net::free_port;
use crate::support::openssl::{make_csr, Key};
use crate::support::partner::{add_partner_with, issue_cert};
use crate::support::plugins::built_plugin;
use crate::support::run::s;
use crate::support::time::now;

/// The licensed KDHS: the only licence in the kdhs plugin's `kdhs_licences`.
pub(crate) const KDHS_LICENCE: &str = "KDHS-2024-01";

/// A registered partner that is not a licensed KDHS.
pub(crate) const UNLICENSED_LICENCE: &str = "KDHS-2024-99";

/// The KEC operator whose devices apply directly.
pub(crate) const KEC_LICENCE: &str = "BTK-KEC-07";

/// Another KEC operator.
pub(crate) const OTHER_KEC_LICENCE: &str = "BTK-KEC-08";

/// What the world's server configuration may change.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Options {
    /// `[channels] commitment_deadline_seconds` (nesca's default when `None`).
    pub commitment_deadline_seconds: Option<u64>,
    /// `[channels] commitment_sweep_seconds`.
    pub commitment_sweep_seconds: Option<u64>,
}

/// Everything around one demo CA that the channel tests use; [`World::new`] also writes the
/// demo's `[channels]` and `[[plugins]]` configuration.
pub(crate) struct World {
    /// `DEMO/work/world`: the outside parties' files.
    pub dir: PathBuf,
    /// nesca's `ca-chain.pem` (issuing CA and root).
    pub ca_chain: PathBuf,
    /// "T.C. Kimlik Kartı Test SM": issues the ID cards' authentication certificates.
    pub idcard_ca: TestCa,
    /// A CA nobody configured.
    pub foreign_ca: TestCa,
    /// The KDHS's trust anchor (`kdhs_trust_anchors`).
    pub kdhs_ca: TestCa,
    /// The KDHS's KDBO signing certificate and key.
    pub kdhs: Signer,
    /// Another partner's KDBO signer under the same trust anchor (serialNumber
    /// [`UNLICENSED_LICENCE`]).
    pub other_kdhs: Signer,
    /// A look-alike KDHS signer issued by the foreign CA.
    pub rogue_kdhs: Signer,
    /// The approved KEC firmware digest (`firmware_sha256`).
    pub firmware: String,
    /// The channels' mTLS port on 127.0.0.1.
    pub port: u16,
    /// The licensed KDHS's secure-communication certificate (mTLS client).
    pub kdhs_client: Signer,
    /// A registered partner's secure-communication certificate, licence not in kdhs_licences.
    pub unlicensed_client: Signer,
    /// The KEC operator's secure-communication certificate (mTLS client).
    pub kec_client: Signer,
    /// A KEC device's role certificate (KDBO signer) of that operator.
    pub kec_device: Signer,
    /// A second device of that operator, and its serial (for revocation tests).
    pub kec_device_2: Signer,
    pub kec_device_2_serial: String,
    /// A device of another operator.
    pub other_device: Signer,
    next: AtomicU32,
}

/// `nesca partner issue-cert` (partner::issue_cert): the certificate, its key, its serial.
#[track_caller]
pub(crate) fn partner_cert(demo: &Demo, partner: &str, kind: &str, cn: &str) -> (Signer, String) {
    let (out, cert) = issue_cert(demo, partner, kind, cn, &format!("{kind}-{cn}.pem"));
    let serial = single_serial_line(&out.ok());
    let key = demo.work.join(format!("{kind}-{cn}.key"));
    (Signer { cert, key }, serial)
}

impl World {
    /// Makes the outside parties, registers the partners with the demo CA, issues their
    /// certificates, and configures `[channels]` (mTLS on a free port) and both plugins.
    #[track_caller]
    pub(crate) fn new(demo: &Demo, options: Options) -> World {
        let dir = demo.work.join("world");
        fs::create_dir_all(&dir).expect("world directory");
        let t = now();
        let idcard_ca = TestCa::new(
            &dir,
            "idcard-ca",
            "/C=TR/O=T.C. İçişleri Bakanlığı/CN=T.C. Kimlik Kartı Test SM",
        );
        let foreign_ca = TestCa::new(
            &dir,
            "foreign-ca",
            "/C=TR/O=Yabancı Kuruluş/CN=Yabancı Test SM",
        );
        let kdhs_ca = TestCa::new(
            &dir,
            "kdhs-ca",
            "/C=TR/O=Test KDHS A.Ş./CN=Test KDHS Kök SM",
        );
        // A KDBO signer names its KDHS's licence in serialNumber (check 4's binding).
        let kdhs_subject =
            format!("/C=TR/O=Test KDHS A.Ş./serialNumber={KDHS_LICENCE}/CN=Test KDHS KDBO İmza");
        let kdhs_subject = kdhs_subject.as_str();
        let kdhs = kdhs_ca.issue(
            "kdhs-signer",
            kdhs_subject,
            SIGNER_EXT,
            t - 300,
            t + 365 * 86400,
        );
        let other_kdhs = kdhs_ca.issue(
            "other-kdhs-signer",
            &format!("/C=TR/O=Lisanssız KDHS Ltd./serialNumber={UNLICENSED_LICENCE}/CN=Başka KDHS KDBO İmza"),
            SIGNER_EXT,
            t - 300,
            t + 365 * 86400,
        );
        let rogue_kdhs = foreign_ca.issue(
            "rogue-signer",
            kdhs_subject,
            SIGNER_EXT,
            t - 300,
            t + 365 * 86400,
        );

        for (id, name, licence) in [
            ("eshs-gw", "nesca Demo ESHS Ağ Geçidi", "ESHS-GW-01"),
            ("kdhs-a", "Test KDHS A.Ş.", KDHS_LICENCE),
            ("kdhs-x", "Lisanssız KDHS Ltd.", UNLICENSED_LICENCE),
            ("kec-op", "Örnek KEC Operatörü A.Ş.", KEC_LICENCE),
            ("kec-other", "Başka KEC Operatörü A.Ş.", OTHER_KEC_LICENCE),
        ] {
            add_partner_with(demo, id, name, licence).ok();
        }
        let (gateway, _) = partner_cert(demo, "eshs-gw", "secure-comm", "127.0.0.1");
        let (kdhs_client, _) = partner_cert(demo, "kdhs-a", "secure-comm", "kdhs-gw");
        let (unlicensed_client, _) = partner_cert(demo, "kdhs-x", "secure-comm", "kdhs-x-gw");
        let (kec_client, _) = partner_cert(demo, "kec-op", "secure-comm", "kec-gw");
        let (kec_device, _) = partner_cert(demo, "kec-op", "role", "KEC-0001");
        let (kec_device_2, kec_device_2_serial) = partner_cert(demo, "kec-op", "role", "KEC-0002");
        let (other_device, _) = partner_cert(demo, "kec-other", "role", "KEC-9001");

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&gateway.key, fs::Permissions::from_mode(0o600))
                .expect("chmod the TLS key");
        }
        let server_chain = dir.join("gateway-chain.pem");
        let chain = format!(
            "{}{}",
            fs::read_to_string(&gateway.cert).expect("gateway certificate"),
            fs::read_to_string(demo.path("issuing-ca.pem")).expect("issuing CA")
        );
        fs::write(&server_chain, chain).expect("gateway chain");

        let firmware = sha256_hex(b"nesca test KEC firmware 1.0.0");
        let port = free_port();
        let mut channels = format!(
            "\n[channels]\nlisten = \"127.0.0.1:{port}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            s(&server_chain),
            s(&gateway.key)
        );
        if let Some(v) = options.commitment_deadline_seconds {
            channels.push_str(&format!("commitment_deadline_seconds = {v}\n"));
        }
        if let Some(v) = options.commitment_sweep_seconds {
            channels.push_str(&format!("commitment_sweep_seconds = {v}\n"));
        }
        let plugins = format!(
            "\n[[plugins]]\npath = \"{kdhs_so}\"\n[plugins.config]\n\
             kdhs_licences = [\"{KDHS_LICENCE}\"]\n\
             kdhs_trust_anchors = \"{anchors}\"\n\
             idcard_ca = \"{idcard}\"\n\
             firmware_sha256 = [\"{firmware}\"]\n\
             kdb_max_age_minutes = 15\n\
             \n[[plugins]]\npath = \"{kec_so}\"\n[plugins.config]\n\
             device_ca = \"{device_ca}\"\n\
             idcard_ca = \"{idcard}\"\n\
             firmware_sha256 = [\"{firmware}\"]\n\
             kdb_max_age_minutes = 15\n\
             \n[[plugins]]\npath = \"{batch_so}\"\n",
            kdhs_so = s(&built_plugin("nesca_plugin_kdhs")),
            batch_so = s(&built_plugin("nesca_plugin_batch_import")),
            anchors = s(&kdhs_ca.cert),
            idcard = s(&idcard_ca.cert),
            kec_so = s(&built_plugin("nesca_plugin_kec")),
            device_ca = s(&demo.path("issuing-ca.pem")),
        );
        let path = demo.config();
        let mut text = fs::read_to_string(&path).expect("nesca.toml");
        assert!(
            !text.contains("\n[channels]"),
            "the demo configuration has a [channels] section already:\n{text}"
        );
        text.push_str(&channels);
        text.push_str(&plugins);
        fs::write(&path, text).expect("write nesca.toml");

        World {
            dir,
            ca_chain: demo.path("ca-chain.pem"),
            idcard_ca,
            foreign_ca,
            kdhs_ca,
            kdhs,
            other_kdhs,
            rogue_kdhs,
            firmware,
            port,
            kdhs_client,
            unlicensed_client,
            kec_client,
            kec_device,
            kec_device_2,
            kec_device_2_serial,
            other_device,
            next: AtomicU32::new(1),
        }
    }

    /// A fresh name for the world's files and KDB ids.
    pub(crate) fn fresh(&self, prefix: &str) -> String {
        format!("{prefix}-{}", self.next.fetch_add(1, Ordering::Relaxed))
    }

    /// `who`'s authentication certificate from the ID-card CA, valid from 5 minutes ago for a
    /// year (DER).
    #[track_caller]
    pub(crate) fn auth_cert(&self, who: Person) -> Vec<u8> {
        let t = now();
        let name = self.fresh("auth");
        self.idcard_ca
            .auth_cert(&name, who, t - 300, t + 365 * 86400)
    }

    /// A KDB of `purpose` for `who`, verified now, with a fresh kdb_id.
    pub(crate) fn kdb(&self, purpose: &'static str, who: Person, serial: Option<&str>) -> Kdb {
        Kdb {
            kdb_id: format!("kdb:{}", self.fresh("id")),
            purpose,
            tckn: who.tckn.to_string(),
            verified_at: now(),
            serial: serial.map(str::to_string),
        }
    }

    /// The KDBO of `kdb`, signed by `signer` with `openssl cms`.
    #[track_caller]
    pub(crate) fn kdbo(&self, signer: &Signer, kdb: &Kdb) -> Vec<u8> {
        let name = self.fresh("kdbo");
        cms_sign(
            &self.dir,
            &name,
            &signer.cert,
            &signer.key,
            kdb.json().as_bytes(),
            Content::Attached,
        )
    }

    /// A CSR for a new P-256 key made in software (the card-CSR case).
    #[track_caller]
    pub(crate) fn card_csr(&self) -> CardCsr {
        self.card_csr_of(Key::P256)
    }

    /// A CSR for a new `key` made in software.
    #[track_caller]
    pub(crate) fn card_csr_of(&self, key: Key) -> CardCsr {
        let name = self.fresh("card");
        let path = make_csr(&self.dir, &name, key, true);
        CardCsr {
            der: fs::read(&path).expect("CSR"),
            path,
            key: self.dir.join(format!("{name}.key")),
        }
    }

    /// An mTLS client of the channel listener presenting `client` (none when `None`).
    pub(crate) fn client(&self, client: Option<&Signer>) -> ChannelClient {
        ChannelClient::new(self.port, &self.ca_chain, client)
    }
}
