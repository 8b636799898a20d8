//! `nesca audit verify`.

use ca_core::store::prelude::*;

use super::emit;
use crate::config::Loaded;
use crate::error::{CliError, Result};
use crate::{wiring, ConfigArg};

pub(crate) fn verify(a: ConfigArg) -> Result<()> {
    let cfg = Loaded::read(&a.config)?;
    let store = wiring::open_existing_store(&cfg)?;
    let report = store.verify_audit()?;
    match report.first_break {
        None => emit(&format!("audit log intact: {} records\n", report.records)),
        Some(seq) => Err(CliError::config(
            "audit",
            format!(
                "hash chain broken at record {seq} ({} records before it verify)",
                report.records
            ),
        )),
    }
}
