//! `nesca issue`: a NES from a PKCS#10 CSR.

use std::path::PathBuf;

use ca_core::{CaError, PersonName, Tckn, VerifiedCsr};
use clap::Args;
use nesca_ra::holder_details::HolderDetails;
use nesca_ra::nes::{NesHolder, NesIssuance};

use super::{cert_pem, emit, OutFile};
use crate::config::Loaded;
use crate::error::{CliError, Result};
use crate::wiring;

#[derive(Args)]
pub(crate) struct IssueArgs {
    /// Path of nesca.toml
    #[arg(long)]
    config: PathBuf,
    /// PKCS#10 certification request, PEM or DER
    #[arg(long)]
    csr: PathBuf,
    /// The holder's T.C. Kimlik No (11 digits)
    #[arg(long)]
    tckn: String,
    /// The holder's given name(s), as on the identity card
    #[arg(long)]
    given_name: String,
    /// The holder's surname, as on the identity card
    #[arg(long)]
    surname: String,
    /// Validity in days (default: the profile's validity_days)
    #[arg(long, allow_negative_numbers = true, value_parser = parse_days)]
    validity_days: Option<u32>,
    /// Where to write the certificate (PEM); without it the PEM goes to stdout
    #[arg(long)]
    out: Option<PathBuf>,
    /// A file holding the security word the holder chose (4 to 64 letters or digits): the
    /// word an operator asks for when the holder calls (kept as an argon2id hash)
    #[arg(long)]
    security_word_file: Option<PathBuf>,
    /// The holder's mobile number (05XXXXXXXXX or +905XXXXXXXXX): the portal's sign-in codes
    /// and the certificate's notices and reminders go to it
    #[arg(long)]
    mobile: Option<String>,
    /// The holder's e-mail address, for the certificate's notices
    #[arg(long)]
    email: Option<String>,
}

/// Whole days, at least 1 (the profile maximum is checked once the configuration is read).
fn parse_days(s: &str) -> std::result::Result<u32, String> {
    match s.parse::<i64>() {
        Ok(d) if d >= 1 => u32::try_from(d).map_err(|_| "is too large".to_string()),
        Ok(_) => Err("must be at least 1".into()),
        Err(_) => Err("must be a whole number of days".into()),
    }
}

pub(crate) fn run(a: IssueArgs) -> Result<()> {
    let cfg = Loaded::read(&a.config)?;

    // Parse at the edge: every refusal here happens before the store or the HSM is touched.
    let tckn = Tckn::parse(&a.tckn).map_err(|e| CaError::Invalid {
        field: "tckn",
        rule: e.to_string(),
    })?;
    let given_name = PersonName::parse("given-name", &a.given_name)?;
    let surname = PersonName::parse("surname", &a.surname)?;
    let csr_bytes = std::fs::read(&a.csr).map_err(CliError::io("cannot read CSR", &a.csr))?;
    let csr = VerifiedCsr::parse(&csr_bytes)?;
    if let Some(days) = a.validity_days {
        nesca_ra::nes::check_validity(&cfg.nes, days, "validity-days")?;
    }
    let security_word = a
        .security_word_file
        .as_deref()
        .map(read_security_word)
        .transpose()?;
    let details = HolderDetails::parse(a.mobile.as_deref(), a.email.as_deref(), security_word)?;

    // Claimed now: an unwritable --out must not leave a certificate nobody received.
    let out = a
        .out
        .as_deref()
        .map(|p| OutFile::claim("out", p))
        .transpose()?;

    let store = wiring::open_existing_store(&cfg)?;
    let issuance = wiring::open_issuance(&cfg, store.clone())?;
    let holder = NesHolder {
        tckn,
        given_name,
        surname,
    };
    let issued = NesIssuance::issue_for_operator(
        &issuance.engine,
        &issuance.ca,
        &cfg.nes,
        holder,
        csr,
        a.validity_days,
    )?;
    // Issued and stored already: if the word or the contact cannot be recorded, the
    // certificate is handed over all the same; what failed is not on record, and a phone
    // request or a portal sign-in is refused until it is.
    if let Err(e) = details.record(
        (&store, &wiring::clock()),
        &issuance.ca.context.id,
        &issued.serial,
        &ca_core::Principal::HostOperator,
    ) {
        emit(&cert_pem(&issued.cert_der))?;
        return Err(e.into());
    }
    let pem = cert_pem(&issued.cert_der);
    match out {
        Some(file) => {
            if let Err(e) = file.commit(pem.as_bytes()) {
                // Issued and stored already: hand the certificate over rather than lose it.
                emit(&pem)?;
                return Err(e);
            }
        }
        None => emit(&pem)?,
    }
    emit(&format!("{}\n", issued.serial))
}

/// Reads a security word from its file (one line; the line break is not part of it), checked
/// before anything is issued. The word never appears on a command line or in a log.
fn read_security_word(path: &std::path::Path) -> Result<secrecy::SecretString> {
    crate::config::check_private_file("security-word-file", path)?;
    let bytes = super::read_limited("security-word-file", path, 1024)?;
    let text = String::from_utf8(bytes).map_err(|_| CliError::Argument {
        field: "security-word-file",
        rule: "must be UTF-8 text".into(),
    })?;
    let word = secrecy::SecretString::from(text.trim_end_matches(['\r', '\n']).to_owned());
    nesca_ra::enrollment::check_security_word(&word)?;
    Ok(word)
}
