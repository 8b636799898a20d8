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
    /// A delta CRL (changes since the latest full CRL) instead of a full one
    #[arg(long)]
    delta: bool,
    /// Where to write a copy of the CRL (DER); it is also published to crl.dir
    #[arg(long)]
    out: PathBuf,
}

pub(crate) fn run(a: CrlArgs) -> Result<()> {
    let cfg = Loaded::read(&a.config)?;
    let out = OutFile::claim("out", &a.out)?;
    let store: Arc<dyn Store> = wiring::open_existing_store(&cfg)?;
    let hsm = wiring::open_hsm(&cfg)?;
    let cas = wiring::served_cas(store.as_ref(), &hsm)?;
    let ca = wiring::configured_ca(&cfg, &cas)?;
    let issuer = wiring::crl_issuer(&cfg, store, ca)?;
    let kind = if a.delta {
        crl::CrlType::Delta
    } else {
        crl::CrlType::Full
    };
    let published = issuer.publish(kind, &ca_core::Principal::HostOperator)?;
    let bytes =
        std::fs::read(&published.path).map_err(CliError::io("cannot read", &published.path))?;
    out.commit(&bytes)?;
    let s = &published.summary;
    emit(&format!(
        "{} CRL number={} entries={} bytes={} published={}\n",
        if a.delta { "delta" } else { "full" },
        s.number,
        s.entries,
        s.bytes,
        published.path.display()
    ))
}
