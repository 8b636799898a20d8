//! Licensed ESHS partners through `nesca partner add|issue-cert` and `nesca revoke`.

use std::path::PathBuf;

use super::demo::Demo;
use super::openssl::Key;
use super::run::{s, Output};

/// The name [`add_partner`] registers.
pub(crate) const PARTNER_NAME: &str = "Örnek ESHS A.Ş.";

/// The licence number [`add_partner`] registers.
pub(crate) const LICENSE: &str = "BTK-2024-17";

/// `nesca partner add` of `id` with this file's name and licence number.
pub(crate) fn add_partner(demo: &Demo, id: &str) -> Output {
    add_partner_with(demo, id, PARTNER_NAME, LICENSE)
}

/// `nesca partner add --id ID --name NAME --license-no LICENCE`.
pub(crate) fn add_partner_with(demo: &Demo, id: &str, name: &str, licence: &str) -> Output {
    let config = demo.config();
    demo.nesca(&[
        "partner",
        "add",
        "--config",
        s(&config),
        "--id",
        id,
        "--name",
        name,
        "--license-no",
        licence,
    ])
}

/// `nesca partner issue-cert --partner PARTNER --kind KIND --common-name CN` for a new P-256
/// CSR, to `WORK/OUT`, whatever the outcome: its output and the certificate's path.
pub(crate) fn issue_cert(
    demo: &Demo,
    partner: &str,
    kind: &str,
    cn: &str,
    out: &str,
) -> (Output, PathBuf) {
    let config = demo.config();
    let csr = demo.csr(&format!("{kind}-{cn}"), Key::P256);
    let out = demo.work.join(out);
    let o = demo.nesca(&[
        "partner",
        "issue-cert",
        "--config",
        s(&config),
        "--partner",
        partner,
        "--kind",
        kind,
        "--csr",
        s(&csr),
        "--common-name",
        cn,
        "--out",
        s(&out),
    ]);
    (o, out)
}

/// `nesca revoke --serial SERIAL --reason privilegeWithdrawn`: the operator withdraws a
/// partner's certificate (it names no holder); panics unless it succeeds.
#[track_caller]
pub(crate) fn withdraw_partner_cert(demo: &Demo, serial: &str) -> Output {
    let config = demo.config();
    demo.nesca(&[
        "revoke",
        "--config",
        s(&config),
        "--serial",
        serial,
        "--reason",
        "privilegeWithdrawn",
    ])
    .ok()
}
