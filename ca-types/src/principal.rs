//! Who acts: the [`Principal`] named by a transport (command line, channel host, production
//! line, admin API, portal) and recorded with every change it makes.
//!
//! A transport authenticates its caller and names the principal; the registration authority
//! (`ra`) decides what that principal may do; the store records the principal in the audit
//! record written in the same transaction as the change. The principal travels typed to the
//! store and is written there in its canonical text form ([`Principal`]'s `Display`), which
//! [`Principal::from_str`](std::str::FromStr) reads back, so an audit record names its actor
//! unambiguously and the text of records written before principals were typed still reads.

use std::fmt;
use std::str::FromStr;

use nesca_identity::Tckn;

use crate::error::CaTypesError;
use crate::operator::OperatorActor;

/// Who acts. Every variant says how the actor was authenticated, so an auditor reading the
/// trail can tell a partner's system from a holder from an operator.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Principal {
    /// Whoever runs `nesca` commands on the CA host: the person who can read the
    /// configuration, the store and the PIN. Recorded as `cli`.
    HostOperator,
    /// A partner's system (a KDHS, a KEC device, an ESHS portal) through a front channel: the
    /// plugin that authenticated it with mutual TLS. Recorded as `plugin:{channel}`.
    Channel(ChannelName),
    /// The holder of a certificate, proven as [`HolderProof`] says. Recorded as
    /// `holder:{proof}:{tckn}`.
    Holder { tckn: Tckn, proof: HolderProof },
    /// A person listed by an institution, signed in with the access password. Recorded as
    /// `applicant:{pre-application id}`.
    Applicant { pre_application: String },
    /// nesca itself, running a scheduled task. Recorded as the task's name.
    System(SystemTask),
    /// A named PKI operator through the admin API, authenticated by their operator
    /// certificate. Recorded as `operator:{role}:{serial}:{name}`.
    Operator(OperatorActor),
}

impl Principal {
    /// A partner's system through the named channel.
    pub fn channel(name: &str) -> Result<Principal, CaTypesError> {
        ChannelName::parse(name).map(Principal::Channel)
    }
}

/// How a holder proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HolderProof {
    /// A fresh identity-card verification (KDBO) forwarded by a channel.
    IdentityCard,
    /// The signed commitment (taahhütname) made with the certificate's own key.
    Commitment,
    /// The portal's sign-in: the security word on record, then a single-use code sent by SMS
    /// to the mobile number on record.
    SecurityWordSms,
}

impl HolderProof {
    /// The proof's name in the audit text.
    pub fn as_str(self) -> &'static str {
        match self {
            HolderProof::IdentityCard => "identity-card",
            HolderProof::Commitment => "commitment",
            HolderProof::SecurityWordSms => "security-word-sms",
        }
    }

    fn parse(s: &str) -> Option<HolderProof> {
        match s {
            "identity-card" => Some(HolderProof::IdentityCard),
            "commitment" => Some(HolderProof::Commitment),
            "security-word-sms" => Some(HolderProof::SecurityWordSms),
            _ => None,
        }
    }
}

/// The scheduled tasks nesca runs on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SystemTask {
    /// The production line of approved institutional applications.
    Production,
    /// The sweep that revokes certificates whose commitment did not arrive in time.
    CommitmentDeadline,
    /// The notification outbox (access passwords, SMS codes).
    Outbox,
    /// The CRL schedule of `nesca serve`.
    CrlSchedule,
    /// `nesca serve` or `nesca ocsp` starting: applications a stop cut off are refused,
    /// reservations that never completed are failed.
    Startup,
    /// The sweep that ends wet-signed lists nobody confirmed in time.
    HeldListExpiry,
    /// The watch that renews delegated OCSP signers in `nesca serve` and `nesca ocsp`.
    OcspSignerRenewal,
    /// The sweep of the admin API's dual-control requests: expires those not approved in
    /// time, carries out approved ones a stop (or a busy node) left waiting.
    AdminRequests,
    /// The sweep of `nesca serve` that resolves, while it runs, the reservations a stopped
    /// process (another node's) left, as its start does.
    ReservationSweep,
}

impl SystemTask {
    /// The task's name, which is also its audit text.
    pub fn as_str(self) -> &'static str {
        match self {
            SystemTask::Production => "production",
            SystemTask::CommitmentDeadline => "commitment-deadline",
            SystemTask::Outbox => "outbox",
            SystemTask::CrlSchedule => "crl-schedule",
            SystemTask::Startup => "serve-start",
            SystemTask::HeldListExpiry => "held-list-expiry",
            SystemTask::OcspSignerRenewal => "ocsp-signer-renewal",
            SystemTask::AdminRequests => "admin-requests",
            SystemTask::ReservationSweep => "reservation-sweep",
        }
    }

    fn parse(s: &str) -> Option<SystemTask> {
        [
            SystemTask::Production,
            SystemTask::CommitmentDeadline,
            SystemTask::Outbox,
            SystemTask::CrlSchedule,
            SystemTask::Startup,
            SystemTask::HeldListExpiry,
            SystemTask::OcspSignerRenewal,
            SystemTask::AdminRequests,
            SystemTask::ReservationSweep,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// A front channel's name: the plugin's name, 1 to 32 of `a-z 0-9 -` (the plugin loader's
/// rule for plugin names).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelName(String);

impl ChannelName {
    /// Longest channel name.
    pub const MAX_LEN: usize = 32;

    /// Checks a channel name.
    pub fn parse(s: &str) -> Result<ChannelName, CaTypesError> {
        let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        if s.is_empty() || s.len() > Self::MAX_LEN || !s.chars().all(ok) {
            return Err(CaTypesError::invalid(
                "channel",
                format!(
                    "must be 1 to {} of a-z, 0-9, '-' (got {} bytes)",
                    Self::MAX_LEN,
                    s.len()
                ),
            ));
        }
        Ok(ChannelName(s.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::HostOperator => f.write_str("cli"),
            Principal::Channel(c) => write!(f, "plugin:{c}"),
            Principal::Holder { tckn, proof } => write!(f, "holder:{}:{tckn}", proof.as_str()),
            Principal::Applicant { pre_application } => write!(f, "applicant:{pre_application}"),
            Principal::System(t) => f.write_str(t.as_str()),
            Principal::Operator(o) => o.fmt(f),
        }
    }
}

impl FromStr for Principal {
    type Err = CaTypesError;

    /// Reads the audit text back. `operator`, which the command line wrote for an operator's
    /// confirmation before principals were typed, reads as [`Principal::HostOperator`].
    fn from_str(s: &str) -> Result<Principal, CaTypesError> {
        let unknown = || {
            let text: String = s.chars().take(80).collect();
            CaTypesError::invalid("principal", format!("\"{text}\" is not a known principal"))
        };
        // `cli partner=ID` is how a partner certificate's issuance was recorded before: the
        // host operator, naming the partner (an id of 1 to 32 of `a-z 0-9 -`).
        let legacy_partner = s.strip_prefix("cli partner=").is_some_and(|id| {
            (1..=32).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
        if matches!(s, "cli" | "operator") || legacy_partner {
            return Ok(Principal::HostOperator);
        }
        if let Some(task) = SystemTask::parse(s) {
            return Ok(Principal::System(task));
        }
        if let Some(c) = s.strip_prefix("plugin:") {
            return Principal::channel(c);
        }
        if let Some(id) = s.strip_prefix("applicant:") {
            return match id.is_empty() {
                true => Err(unknown()),
                false => Ok(Principal::Applicant {
                    pre_application: id.to_owned(),
                }),
            };
        }
        if let Some(rest) = s.strip_prefix("operator:") {
            return OperatorActor::parse_audit_text(rest)
                .map(Principal::Operator)
                .ok_or_else(unknown);
        }
        if let Some(rest) = s.strip_prefix("holder:") {
            let (proof, tckn) = rest.split_once(':').ok_or_else(unknown)?;
            let proof = HolderProof::parse(proof).ok_or_else(unknown)?;
            let tckn = Tckn::parse(tckn).map_err(|_| unknown())?;
            return Ok(Principal::Holder { tckn, proof });
        }
        Err(unknown())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_principal_reads_back_from_its_audit_text() {
        let all = [
            Principal::HostOperator,
            Principal::channel("kdhs").unwrap(),
            Principal::Holder {
                tckn: Tckn::parse("10000000146").unwrap(),
                proof: HolderProof::IdentityCard,
            },
            Principal::Holder {
                tckn: Tckn::parse("10000000146").unwrap(),
                proof: HolderProof::Commitment,
            },
            Principal::Holder {
                tckn: Tckn::parse("10000000146").unwrap(),
                proof: HolderProof::SecurityWordSms,
            },
            Principal::Applicant {
                pre_application: "pa-1".into(),
            },
            Principal::System(SystemTask::Production),
            Principal::System(SystemTask::CommitmentDeadline),
            Principal::System(SystemTask::Outbox),
            Principal::System(SystemTask::CrlSchedule),
            Principal::System(SystemTask::Startup),
            Principal::Operator(crate::OperatorActor {
                name: crate::OperatorName::parse("Ayşe Yılmaz").unwrap(),
                role: crate::OperatorRole::RaOfficer,
                serial: crate::Serial::random(),
            }),
        ];
        for p in all {
            let text = p.to_string();
            assert_eq!(text.parse::<Principal>().unwrap(), p, "{text}");
        }
    }

    #[test]
    fn the_audit_text_is_the_one_recorded_before_principals_were_typed() {
        assert_eq!(Principal::HostOperator.to_string(), "cli");
        assert_eq!(
            Principal::channel("batch-import").unwrap().to_string(),
            "plugin:batch-import"
        );
        assert_eq!(
            Principal::System(SystemTask::Production).to_string(),
            "production"
        );
        assert_eq!(
            "operator".parse::<Principal>().unwrap(),
            Principal::HostOperator
        );
        assert_eq!(
            "cli partner=acme".parse::<Principal>().unwrap(),
            Principal::HostOperator
        );
    }

    #[test]
    fn unknown_or_malformed_text_is_refused() {
        for bad in [
            "",
            "root",
            "plugin:",
            "plugin:KDHS",
            "plugin:a b",
            "applicant:",
            "holder:identity-card:12345678901",
            "holder:sms:10000000146",
            "holder:10000000146",
            "cli partner=",
            "cli partner=ACME",
            "cli partner=a b",
            "cli partnerx",
            "operator:",
            "operator:ra-officer:zz:Ayşe",
            "operator:root:01:Ayşe",
        ] {
            assert!(bad.parse::<Principal>().is_err(), "{bad:?} was accepted");
        }
        let long = "x".repeat(ChannelName::MAX_LEN + 1);
        assert!(ChannelName::parse(&long).is_err());
    }
}
