//! `nesca crl`: generate, sign and publish a CRL now, and keep a copy.

use std::path::PathBuf;
use std::sync::Arc;

use ca_core::store::Store;
use clap::Args;

use super::{emit, OutFile};
use crate::config::Loaded;
use crate::error::{CliError, Result};
use crate::wiring;

#[derive(Args)]
pub(crate) struct CrlArgs {
    /// Path of nesca.toml
    #[arg(long)]
    config: PathBuf,
    /// A delta CRL (changes since the latest full CRL) instead of a full one (issuing CAs
    /// only: a root's CRL has no deltas)
    #[arg(long)]
    delta: bool,
    /// The CA whose CRL is made: an issuing CA, or the root (its CRL of the CAs it revoked);
    /// the configured issuing CA (`ca.id`) when left out
    #[arg(long)]
    ca: Option<String>,
    /// Where to write the CRL this command makes (DER); it is also published to crl.dir,
    /// unless a CRL with a number at least as high is published there already
    #[arg(long)]
    out: PathBuf,
}

pub(crate) fn run(a: CrlArgs) -> Result<()> {
    let cfg = Loaded::read(&a.config)?;
    run_for(&cfg, a.ca, a.delta, &a.out)
}

/// A CRL of CA `ca` (default: the issuing CA's current generation) now, published and
/// copied to `out`: `out` gets the bytes this command signed, never the published file read
/// back (another publisher may have replaced it, or kept its newer CRL in place of this one).
pub(crate) fn run_for(
    cfg: &Loaded,
    ca: Option<String>,
    delta: bool,
    out_path: &std::path::Path,
) -> Result<()> {
    let mut out = OutFile::claim("out", out_path)?;
    let store: Arc<dyn Store> = wiring::open_existing_store(cfg)?;
    let hsm = wiring::open_hsm(cfg)?;
    let id = match &ca {
        Some(ca) => ca_core::IssuerId::parse(ca).map_err(|e| CliError::Argument {
            field: "ca",
            rule: e.rule(),
        })?,
        None => wiring::current_issuing(cfg, store.as_ref())?.id,
    };
    let issuer = match store.ca(&id)?.map(|r| r.role) {
        None => {
            return Err(CliError::Argument {
                field: "ca",
                rule: format!("no CA \"{id}\" in the store (`nesca ca list` names them)"),
            })
        }
        Some(ca_core::store::CaRole::Root) => {
            if delta {
                return Err(CliError::Argument {
                    field: "delta",
                    rule: format!("\"{id}\" is a root: its CRL has no deltas"),
                });
            }
            wiring::root_crl_issuers(cfg, store.clone(), &hsm)?
                .into_iter()
                .find(|i| i.issuer == id)
                .ok_or_else(|| CliError::Argument {
                    field: "ca",
                    rule: format!("the root \"{id}\" has no key on this token"),
                })?
        }
        Some(ca_core::store::CaRole::Issuing) => {
            let cas = wiring::served_cas(store.as_ref(), &hsm)?;
            let ca = cas
                .iter()
                .find(|c| c.record.id == id)
                .ok_or_else(|| CliError::Argument {
                    field: "ca",
                    rule: format!("CA \"{id}\" is not served"),
                })?;
            wiring::crl_issuer(cfg, store, ca)?
        }
    };
    let kind = if delta {
        crl::CrlType::Delta
    } else {
        crl::CrlType::Full
    };
    // The CRL streams into --out as it is written for publication (a million entries are
    // 50 MB: never held in memory).
    let mut copy = std::io::BufWriter::new(out.file()?);
    let published = issuer.publish_and_copy(kind, &ca_core::Principal::HostOperator, &mut copy)?;
    std::io::Write::flush(&mut copy).map_err(CliError::io("cannot write", out_path))?;
    drop(copy);
    out.commit(&[])?;
    emit(&crl_line(delta, &published))
}

/// `full|delta CRL number=N entries=M bytes=B published=PATH`, and ` superseded=P` when the
/// published file kept a CRL numbered P (not lower than N) instead of this one.
fn crl_line(delta: bool, published: &crl::Published) -> String {
    let s = &published.summary;
    let superseded = match published.outcome {
        crl::PublishOutcome::Replaced => String::new(),
        crl::PublishOutcome::Kept { published } => format!(" superseded={published}"),
    };
    format!(
        "{} CRL number={} entries={} bytes={} published={}{superseded}\n",
        if delta { "delta" } else { "full" },
        s.number,
        s.entries,
        s.bytes,
        published.path.display()
    )
}
