//! End-to-end tests of the `nesca` binary: each test gets a demo CA (`nesca init --demo`) in a
//! temporary directory of its own, with its own SoftHSM token and store (a copy of one made once
//! per process, support/template.rs), and checks what the command line does with `openssl`,
//! `softhsm2-util` and pkilint's `lint_etsi_cert`. The helpers are in support/, one concern per
//! module; the other files hold tests only.
//!
//! Needs on PATH: `openssl`, `softhsm2-util` (and the SoftHSM module nesca's demo config names);
//! pkilint in `$NESCA_PKILINT_DIR` or on PATH. `scripts/test.sh` installs all three.

mod admin;
mod audit;
mod batch_worked_example;
mod browser_smoke;
mod ca_certs;
mod card_package;
mod channel_worked_examples;
mod channels;
mod concurrent;
mod concurrent_issue;
mod crash;
mod crl;
mod crl_concurrency;
mod enrollment;
mod files;
mod hardening;
mod hsm_faults;
mod hsm_loss;
mod init;
mod init_existing_token;
mod institution;
mod issue;
mod lifecycle;
mod lint;
mod listener_limits;
mod mtls;
mod multinode;
mod ocsp;
mod partner;
mod pdf_validation;
mod pg_faults;
mod plugin_host;
mod plugins;
mod portal;
mod refusals;
mod support;
mod token_crash;
