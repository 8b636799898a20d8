//! The KEC's own rules: check 4 (the KDBO is signed by an active KEC role certificate of the
//! operator whose secure-communication certificate opened the channel), check 10 (slots), and
//! holder lifecycle requests.

use nesca_channel_kit::client::ID_KP_CLIENT_AUTH;
use std::collections::BTreeMap;

use nesca_channel_kit::config::FirmwareDigests;
use nesca_channel_kit::{
    ChannelError, ChannelPolicy, ClientCertificate, ConfigReader, HostCalls, Kdbo, Slots,
};
use nesca_pkix::subject::{extended_key_usages, serial_hex, subject_attribute};

/// The subject's commonName (X.520): a device's id in its role certificate.
const OID_COMMON_NAME: &str = "2.5.4.3";

use crate::slots::check_slots;

/// The configuration keys of this channel besides the shared ones.
pub const KEC_KEYS: &[&str] = &["device_ca", "operator_firmware", "device_firmware"];

/// The device that signed `kdbo`, as `LICENCE/DEVICE`: the operator's licence and the
/// subject CN of the device's role certificate (check 4 has bound the two).
fn device_name(client: &ClientCertificate, kdbo: &Kdbo) -> Option<String> {
    subject_attribute(kdbo.signer_certificate(), OID_COMMON_NAME)
        .ok()
        .flatten()
        .map(|cn| format!("{}/{cn}", client.licence()))
}

/// Who may sign the KEC channel's KDBOs.
#[derive(Debug, Clone)]
pub struct KecPolicy {
    /// `device_ca`: nesca's CA certificate(s) that issue KEC role certificates (DER).
    device_ca: Vec<Vec<u8>>,
    /// `operator_firmware`: for an operator (licence number) listed here, the firmware
    /// digests its devices may run, instead of the shared `firmware_sha256`.
    operator_firmware: BTreeMap<String, FirmwareDigests>,
    /// `device_firmware`: for a device named `LICENCE/DEVICE` (its operator's licence and its
    /// role certificate's subject CN), the digests it may run, instead of either list above.
    device_firmware: BTreeMap<String, FirmwareDigests>,
}

impl KecPolicy {
    /// Reads `device_ca` (a PEM file) and the optional `operator_firmware` and
    /// `device_firmware` tables.
    pub fn read(config: &ConfigReader) -> Result<KecPolicy, ChannelError> {
        let table = |key: &str| -> Result<BTreeMap<String, FirmwareDigests>, ChannelError> {
            let mut parsed = BTreeMap::new();
            for (name, digests) in config.string_list_table(key)? {
                let digests = FirmwareDigests::parse(&format!("{key}.{name}"), &digests)?;
                parsed.insert(name, digests);
            }
            Ok(parsed)
        };
        let device_firmware = table("device_firmware")?;
        if let Some(bad) = device_firmware.keys().find(|name| {
            !name
                .split_once('/')
                .is_some_and(|(licence, device)| !licence.is_empty() && !device.is_empty())
        }) {
            return Err(ChannelError::config(
                format!("device_firmware.{bad}"),
                "must name a device as LICENCE/DEVICE: the operator's licence number and the device's role certificate CN",
            ));
        }
        Ok(KecPolicy {
            device_ca: config.certificates("device_ca")?,
            operator_firmware: table("operator_firmware")?,
            device_firmware,
        })
    }
}

fn refuse(rule: impl Into<String>) -> ChannelError {
    ChannelError::kdbo_signer("kdbo", rule)
}

impl ChannelPolicy for KecPolicy {
    fn name(&self) -> &'static str {
        "kec"
    }

    /// Any secure-communication certificate nesca issued: which operator it is matters at
    /// check 4, where the device's role certificate must be the same operator's.
    fn check_client(&self, _client: &ClientCertificate) -> Result<(), ChannelError> {
        Ok(())
    }

    fn check_kdbo_signer(
        &self,
        kdbo: &Kdbo,
        client: &ClientCertificate,
        host: &dyn HostCalls,
        now: i64,
    ) -> Result<(), ChannelError> {
        kdbo.verify_signer_path(
            &self.device_ca,
            now,
            Some(ID_KP_CLIENT_AUTH),
            "nesca's device CA (device_ca)",
        )?;
        let signer = kdbo.signer_certificate();
        let unreadable = |e: nesca_pkix::PkixError| {
            refuse(format!("the signer certificate cannot be read: {e}"))
        };

        // A role certificate has clientAuth and nothing else: a secure-communication
        // certificate's key lives in a server, not in the device that read the card.
        let ekus = extended_key_usages(signer).map_err(unreadable)?;
        if ekus != [ID_KP_CLIENT_AUTH] {
            return Err(refuse(
                "the signer must be a KEC role certificate: extendedKeyUsage exactly clientAuth",
            ));
        }

        kdbo.verify_signer_binding(client, "the role certificate")?;

        // The device CA's signature says nothing of revocation since: ask the store.
        let serial = serial_hex(signer).map_err(unreadable)?;
        let info = host.lookup_certificate(&serial).map_err(|e| {
            refuse(format!(
                "the role certificate {serial} is not known to nesca: {e}"
            ))
        })?;
        if info.status != "active" {
            return Err(refuse(format!(
                "the role certificate {serial} is {}; only an active role certificate may sign",
                info.status
            )));
        }
        Ok(())
    }

    /// The most specific list decides: the device's own (`device_firmware`, the device being
    /// the role certificate that signed the KDBO, checked at check 4), else its operator's
    /// (`operator_firmware`), else the shared `firmware_sha256`. A digest approved for one
    /// device or operator is not approved for another.
    fn check_firmware(
        &self,
        shared: &FirmwareDigests,
        (client, kdbo): (&ClientCertificate, &Kdbo),
        digest: &str,
    ) -> Result<(), ChannelError> {
        match (
            device_name(client, kdbo).and_then(|d| self.device_firmware.get(&d)),
            self.operator_firmware.get(client.licence()),
        ) {
            (Some(own), _) | (None, Some(own)) => own.check(digest),
            (None, None) => shared.check(digest),
        }
    }

    /// A KEC's verifications are its device's: the reference is keyed in `LICENCE/DEVICE`
    /// (the device's role certificate CN), so that one device never receives another's answer
    /// (nor, while a commitment is pending, its card key) by reusing its `kdb_id`.
    fn replay_namespace(&self, client: &ClientCertificate, kdbo: &Kdbo) -> String {
        device_name(client, kdbo).unwrap_or_else(|| client.licence().to_owned())
    }

    fn check_slots(
        &self,
        slots: Option<Slots>,
        overwrite_serial: Option<&str>,
    ) -> Result<(), ChannelError> {
        check_slots(slots, overwrite_serial)
    }

    fn serves_lifecycle(&self) -> bool {
        true
    }
}
