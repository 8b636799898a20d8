//! What differs between the identity-card channels, as a trait the kdhs and kec plugins
//! implement; everything else is [`Channel`](crate::Channel)'s.

use crate::application_request::Slots;
use crate::client::ClientCertificate;
use crate::config::FirmwareDigests;
use crate::error::ChannelError;
use crate::host::HostCalls;
use crate::kdbo::Kdbo;

/// A channel's own rules.
pub trait ChannelPolicy: Send + Sync {
    /// The plugin's name, as in `/channels/{name}/…` (answers carry paths under it).
    fn name(&self) -> &'static str;

    /// Check 1, the channel's own part, after the shared one found a secure-communication
    /// certificate (e.g. KDHS: its licence is configured).
    fn check_client(&self, client: &ClientCertificate) -> Result<(), ChannelError>;

    /// Check 4 (`kdbo_signer`): the KDBO (its signature verified) was signed by someone this
    /// channel trusts to have verified the person, at `now`.
    fn check_kdbo_signer(
        &self,
        kdbo: &Kdbo,
        client: &ClientCertificate,
        host: &dyn HostCalls,
        now: i64,
    ) -> Result<(), ChannelError>;

    /// Check 10 (`slots`): the card's slots as the request states them, and the certificate
    /// chosen to be overwritten. Channels that do not see the card accept anything.
    fn check_slots(
        &self,
        slots: Option<Slots>,
        overwrite_serial: Option<&str>,
    ) -> Result<(), ChannelError> {
        let _ = (slots, overwrite_serial);
        Ok(())
    }

    /// Check 9 (`firmware`): the KEC firmware `digest` the request names is approved for the
    /// partner `client` and the device that signed `kdbo`. By default the shared list
    /// `firmware_sha256` (`shared`) decides.
    fn check_firmware(
        &self,
        shared: &FirmwareDigests,
        (client, kdbo): (&ClientCertificate, &Kdbo),
        digest: &str,
    ) -> Result<(), ChannelError> {
        let _ = (client, kdbo);
        shared.check(digest)
    }

    /// Whose `kdb_id`s a request's reference ([`crate::kdb::Kdb::reference`]) is keyed in:
    /// by default the partner's licence (the KDBO's signer is bound to it at check 4).
    fn replay_namespace(&self, client: &ClientCertificate, kdbo: &Kdbo) -> String {
        let _ = kdbo;
        client.licence().to_owned()
    }

    /// Whether the channel serves holder lifecycle requests (`POST /v1/lifecycle`).
    fn serves_lifecycle(&self) -> bool {
        false
    }
}
