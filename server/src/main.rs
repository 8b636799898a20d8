//! `nesca`: the command line of the nesca certificate authority.
//!
//! Each command parses its input at the edge into typed values and calls ca-core; no policy
//! lives here. At default verbosity a failing command prints exactly one line and exits 1.
#![forbid(unsafe_code)]

mod admin;
mod audit_checkpoint;
mod channels;
mod commands;
mod config;
mod error;
mod list_import;
mod listener;
mod ocsp_signer;
mod officer_crl;
mod plugin_host;
mod portal;
mod production;
mod senders;
mod serve;
#[cfg(test)]
mod test_log;
mod wiring;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// nesca — a certificate authority for Turkish qualified electronic signature (NES)
/// certificates, with its keys in a PKCS#11 HSM.
#[derive(Parser)]
#[command(name = "nesca", version)]
struct Cli {
    /// Log to stderr (-v info, -vv debug). RUST_LOG also works.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the CA: a demo with its own SoftHSM token (--demo --dir), or on an existing token (--config)
    Init(commands::init::InitArgs),
    /// Issue a NES certificate from a PKCS#10 CSR
    Issue(commands::issue::IssueArgs),
    /// Serve OCSP, CRLs and CA certificates; publish CRLs on schedule
    Serve(serve::ServeArgs),
    /// Run the OCSP responder alone, reading status from the store
    Ocsp(serve::OcspArgs),
    /// Generate, sign and publish a CRL now (full, or --delta)
    Crl(commands::crl::CrlArgs),
    /// Revoke a certificate for good, on its holder's request
    Revoke(commands::lifecycle::LifecycleArgs),
    /// Suspend a certificate (certificateHold), on its holder's request
    Suspend(commands::lifecycle::LifecycleArgs),
    /// Release a suspended certificate, on its holder's request
    Unsuspend(commands::lifecycle::LifecycleArgs),
    /// Look at issued certificates
    #[command(subcommand)]
    Cert(CertCommand),
    /// The CA's own certificates: its CAs and their delegated OCSP signers
    #[command(subcommand)]
    Ca(CaCommand),
    /// An offline root CA on a token of its own (key ceremony)
    #[command(subcommand)]
    Root(RootCommand),
    /// Registered licensed ESHS partners and their role and secure-communication certificates
    #[command(subcommand)]
    Partner(PartnerCommand),
    /// Named PKI operators of the admin API (one role per person)
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// The admin API's own listener certificate
    #[command(subcommand)]
    Admin(AdminCommand),
    /// The portal's own listener certificate
    #[command(subcommand)]
    Portal(PortalCommand),
    /// The partners' channel listener certificate
    #[command(subcommand)]
    Channels(ChannelsCommand),
    /// Trusted transport keys (card-personalisation system, KEC devices) card keys may be wrapped for
    #[command(subcommand)]
    TransportKey(TransportKeyCommand),
    /// Institutions of the institutional channel and their e-İmza officers
    #[command(subcommand)]
    Institution(InstitutionCommand),
    /// Import an institution's FRM.01.03 list (xlsx or csv): one pre-application per valid row
    Import(commands::import::ImportArgs),
    /// Confirm a wet-signed list after seeing the paper: its people are invited
    ConfirmList(commands::import::HeldListArgs),
    /// Reject a wet-signed list (no paper, or not the officer's): its held rows are closed
    RejectList(commands::import::HeldListArgs),
    /// The notification outbox (access passwords, SMS codes)
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Invited people completing their applications; wet-signature receipts; e-Onay consents
    #[command(subcommand)]
    Applicant(ApplicantCommand),
    /// Produce approved institutional applications (card keys, certificates, card packages)
    #[command(subcommand)]
    Production(ProductionCommand),
    /// Invoice lines of produced certificates
    #[command(subcommand)]
    Billing(BillingCommand),
    /// Front-channel plugins
    #[command(subcommand)]
    Plugins(PluginsCommand),
    /// Check the audit log
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Benchmarks (signing rate against issuance throughput)
    #[command(subcommand)]
    Bench(BenchCommand),
    /// The process one plugin runs in, started by `nesca serve` (not for people)
    #[command(hide = true)]
    PluginHost,
}

#[derive(Subcommand)]
enum CertCommand {
    /// Show one certificate as JSON
    Show(commands::cert::ShowArgs),
    /// List every certificate in the store, one JSON object per line
    List(ConfigArg),
}

#[derive(Subcommand)]
enum CaCommand {
    /// List every CA and every OCSP signer it has had (key label, validity, status), one JSON object per line
    List(ConfigArg),
    /// Renew an issuing CA's delegated OCSP signer now: a new key in the HSM, a new certificate
    RenewOcspSigner(commands::ca::RenewOcspSignerArgs),
    /// Revoke an issuing CA's certificate (reason required): its root's CRL lists it
    Revoke(commands::ca::RevokeArgs),
    /// Roll an issuing CA over to a new key: a new generation, same name, certified by the root
    Rollover(commands::ca::RolloverArgs),
    /// Install the issuing CA certificate an offline root signed (after init --external-root)
    ImportCert(commands::ca::ImportCertArgs),
    /// Publish the offline root's CRL (verified under the root) where serve serves it
    ImportCrl(commands::ca::ImportCrlArgs),
}

#[derive(Subcommand)]
enum RootCommand {
    /// Create an offline root on its own token (--demo --dir, or --config ROOT.toml)
    Init(commands::root::RootInitArgs),
    /// Certify an issuing CA's request (init --external-root wrote it)
    Sign(commands::root::RootSignArgs),
    /// Sign the root's CRL (copy it to the online CA: nesca ca import-crl)
    Crl(commands::root::RootCrlArgs),
    /// Revoke an issuing CA's certificate the root signed
    Revoke(commands::root::RootRevokeArgs),
}

#[derive(Subcommand)]
enum PartnerCommand {
    /// Register a licensed ESHS operator
    Add(commands::partner::AddArgs),
    /// List the registered partners, one JSON object per line
    List(ConfigArg),
    /// Stop issuing to a partner (its certificates stay; revoke them one by one)
    Deactivate(commands::partner::DeactivateArgs),
    /// Issue a role or secure-communication certificate to a registered partner from a CSR
    IssueCert(commands::partner::IssueCertArgs),
}

#[derive(Subcommand)]
enum OperatorCommand {
    /// Register an operator in one role and issue their certificate from their CSR
    Add(commands::operator::AddArgs),
    /// List the operators, one JSON object per line
    List(ConfigArg),
    /// Disable an operator: their certificate opens nothing from the next request on
    Disable(commands::operator::DisableArgs),
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Issue the admin listener's TLS certificate (names in subjectAltName) and key
    TlsCert(commands::admin::TlsCertArgs),
}

#[derive(Subcommand)]
enum PortalCommand {
    /// Issue the portal listener's TLS certificate (names in subjectAltName) and key
    TlsCert(commands::admin::TlsCertArgs),
}

#[derive(Subcommand)]
enum ChannelsCommand {
    /// Issue the channel listener's TLS server certificate (names in subjectAltName) and key
    TlsCert(commands::admin::TlsCertArgs),
}

#[derive(Subcommand)]
enum TransportKeyCommand {
    /// Register a transport certificate (RSA, 2048 bits or more); prints its id
    Add(commands::transport_key::AddArgs),
    /// List the registered transport keys, one JSON object per line
    List(ConfigArg),
    /// Withdraw a transport key for good: no card key is wrapped for it again
    Revoke(commands::transport_key::RevokeArgs),
}

#[derive(Subcommand)]
enum InstitutionCommand {
    /// Register an institution and its e-İmza officer
    Add(commands::institution::AddArgs),
    /// List the institutions, one JSON object per line
    List(ConfigArg),
    /// Replace an institution's e-İmza officer (the old officer's lists are refused from now)
    SetOfficer(commands::institution::SetOfficerArgs),
    /// Deactivate an institution: its lists and its portal's uploads are refused
    Deactivate(commands::institution::IdArgs),
    /// Activate a deactivated institution again
    Activate(commands::institution::IdArgs),
}

#[derive(Subcommand)]
enum OutboxCommand {
    /// Deliver the messages that are due, once
    Send(ConfigArg),
    /// List the messages, one JSON object per line
    List(ConfigArg),
}

#[derive(Subcommand)]
enum ApplicantCommand {
    /// List an institution's invited people and where their applications stand
    List(commands::applicant::ListArgs),
    /// Show one application as JSON
    Show(commands::applicant::ShowArgs),
    /// Record the receipt of a wet-signed application form (its scan is kept)
    ReceiveWet(commands::applicant::ReceiveWetArgs),
    /// Send an invited person a new access password and lift every sign-in lock on them (all addresses)
    ResendPassword(commands::applicant::ShowArgs),
    /// Record a person's e-Onay consent with its evidence
    Consent(commands::applicant::ConsentArgs),
}

#[derive(Subcommand)]
enum ProductionCommand {
    /// Produce the approved applications that are due, once
    Run(ConfigArg),
    /// Hand in the card bureau's CSR of an approved application
    Csr(commands::production::CsrArgs),
}

#[derive(Subcommand)]
enum BillingCommand {
    /// An institution's invoice lines for a month, as csv
    Report(commands::billing::ReportArgs),
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// Load the plugins nesca.toml lists and show their names, versions and routes
    List(ConfigArg),
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the audit log: hash chain, signed checkpoints, anchor, certificates and transitions
    Verify(ConfigArg),
    /// Sign the audit chain's head now with the audit key (serve does it on its schedule)
    Checkpoint(ConfigArg),
    /// Write records and checkpoints as JSON lines an auditor can check without nesca
    Export(commands::audit::ExportArgs),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Raw C_Sign rate against end-to-end issuance throughput, 1 and 2 workers
    Issue(commands::bench::BenchArgs),
    /// Time and peak memory of a full CRL of N revoked certificates, against openssl ca -gencrl
    Crl(commands::bench_crl::BenchCrlArgs),
    /// Cost of a channel request through a plugin-host process, against the plugin in-process
    PluginCall(commands::bench_plugin::BenchPluginArgs),
}

/// The configuration file.
#[derive(Args)]
pub struct ConfigArg {
    /// Path of nesca.toml
    #[arg(long)]
    pub config: PathBuf,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Init(a) => commands::init::run(a),
        Command::Issue(a) => commands::issue::run(a),
        Command::Serve(a) => serve::serve(a),
        Command::PluginHost => plugin_host::run_child(),
        Command::Ocsp(a) => serve::ocsp(a),
        Command::Crl(a) => commands::crl::run(a),
        Command::Revoke(a) => commands::lifecycle::run("revoke", a),
        Command::Suspend(a) => commands::lifecycle::run("suspend", a),
        Command::Unsuspend(a) => commands::lifecycle::run("unsuspend", a),
        Command::Cert(CertCommand::Show(a)) => commands::cert::show(a),
        Command::Cert(CertCommand::List(a)) => commands::cert::list(a),
        Command::Ca(CaCommand::List(a)) => commands::ca::list(a),
        Command::Ca(CaCommand::RenewOcspSigner(a)) => commands::ca::renew_ocsp_signer(a),
        Command::Ca(CaCommand::Revoke(a)) => commands::ca::revoke(a),
        Command::Ca(CaCommand::Rollover(a)) => commands::ca::rollover(a),
        Command::Ca(CaCommand::ImportCert(a)) => commands::ca::import_cert(a),
        Command::Ca(CaCommand::ImportCrl(a)) => commands::ca::import_crl(a),
        Command::Root(RootCommand::Init(a)) => commands::root::init(a),
        Command::Root(RootCommand::Sign(a)) => commands::root::sign(a),
        Command::Root(RootCommand::Crl(a)) => commands::root::crl(a),
        Command::Root(RootCommand::Revoke(a)) => commands::root::revoke(a),
        Command::TransportKey(TransportKeyCommand::Add(a)) => commands::transport_key::add(a),
        Command::TransportKey(TransportKeyCommand::List(a)) => commands::transport_key::list(a),
        Command::TransportKey(TransportKeyCommand::Revoke(a)) => commands::transport_key::revoke(a),
        Command::Operator(OperatorCommand::Add(a)) => commands::operator::add(a),
        Command::Operator(OperatorCommand::List(a)) => commands::operator::list(a),
        Command::Operator(OperatorCommand::Disable(a)) => commands::operator::disable(a),
        Command::Admin(AdminCommand::TlsCert(a)) => commands::admin::tls_cert(a),
        Command::Portal(PortalCommand::TlsCert(a)) => commands::admin::portal_tls_cert(a),
        Command::Channels(ChannelsCommand::TlsCert(a)) => commands::admin::channels_tls_cert(a),
        Command::Partner(PartnerCommand::Add(a)) => commands::partner::add(a),
        Command::Partner(PartnerCommand::List(a)) => commands::partner::list(a),
        Command::Partner(PartnerCommand::Deactivate(a)) => commands::partner::deactivate(a),
        Command::Partner(PartnerCommand::IssueCert(a)) => commands::partner::issue_cert(a),
        Command::Institution(InstitutionCommand::Add(a)) => commands::institution::add(a),
        Command::Institution(InstitutionCommand::List(a)) => commands::institution::list(a),
        Command::Institution(InstitutionCommand::SetOfficer(a)) => {
            commands::institution::set_officer(a)
        }
        Command::Institution(InstitutionCommand::Deactivate(a)) => {
            commands::institution::set_active(a, false)
        }
        Command::Institution(InstitutionCommand::Activate(a)) => {
            commands::institution::set_active(a, true)
        }
        Command::Import(a) => commands::import::run(a),
        Command::ConfirmList(a) => commands::import::confirm(a),
        Command::RejectList(a) => commands::import::reject(a),
        Command::Outbox(OutboxCommand::Send(a)) => commands::outbox::send(a),
        Command::Outbox(OutboxCommand::List(a)) => commands::outbox::list(a),
        Command::Applicant(ApplicantCommand::List(a)) => commands::applicant::list(a),
        Command::Applicant(ApplicantCommand::Show(a)) => commands::applicant::show(a),
        Command::Applicant(ApplicantCommand::ReceiveWet(a)) => commands::applicant::receive_wet(a),
        Command::Applicant(ApplicantCommand::ResendPassword(a)) => {
            commands::applicant::resend_password(a)
        }
        Command::Applicant(ApplicantCommand::Consent(a)) => commands::applicant::consent(a),
        Command::Production(ProductionCommand::Run(a)) => commands::production::run(a),
        Command::Production(ProductionCommand::Csr(a)) => commands::production::csr(a),
        Command::Billing(BillingCommand::Report(a)) => commands::billing::report(a),
        Command::Plugins(PluginsCommand::List(a)) => commands::plugins::list(a),
        Command::Audit(AuditCommand::Verify(a)) => commands::audit::verify(a),
        Command::Audit(AuditCommand::Checkpoint(a)) => commands::audit::checkpoint(a),
        Command::Audit(AuditCommand::Export(a)) => commands::audit::export(a),
        Command::Bench(BenchCommand::Issue(a)) => commands::bench::run(a),
        Command::Bench(BenchCommand::Crl(a)) => commands::bench_crl::run(a),
        Command::Bench(BenchCommand::PluginCall(a)) => commands::bench_plugin::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever the error chain looks like.
            let line = e.to_string().replace(['\n', '\r'], " ");
            eprintln!("error: {line}");
            ExitCode::FAILURE
        }
    }
}

/// Help and version go out as clap renders them; a usage error becomes the one-line form
/// every other failure has, with clap's own wording and exit code 2.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    let rendered = e.render().to_string();
    let first = rendered
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid arguments");
    let line = first.trim_start_matches("error: ").trim();
    eprintln!("error: {line} (see nesca --help)");
    ExitCode::from(2)
}

/// The log directive that keeps the PostgreSQL client's statement log (with its parameters)
/// out of every log.
const NO_STATEMENT_LOG: &str = "tokio_postgres=info";

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let filter = match (verbose, std::env::var("RUST_LOG")) {
        (0, Ok(env)) => EnvFilter::new(env),
        (0, Err(_)) => return,
        (1, _) => EnvFilter::new("info"),
        _ => EnvFilter::new("debug"),
    }
    // The PostgreSQL client logs every statement's parameters at debug level: T.C. Kimlik
    // Nos, names, hashes of secrets. Never below info, whatever was asked.
    .add_directive(NO_STATEMENT_LOG.parse().expect("a constant directive"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

#[cfg(test)]
mod logging_tests {
    /// The directive that keeps statement parameters out of the log parses (it is added to
    /// every filter, whatever `-v` or `RUST_LOG` asked for).
    #[test]
    fn the_statement_log_directive_parses() {
        let _: tracing_subscriber::filter::Directive = super::NO_STATEMENT_LOG.parse().unwrap();
    }
}
