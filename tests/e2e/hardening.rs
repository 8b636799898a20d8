//! Hardening through the binary: SMTP AUTH in the clear to another host is a
//! configuration error, and the public lookup by T.C. Kimlik No is rate limited per client.
//! (The reservation a crash leaves is in crash.rs, a plugin's panic text in plugins.rs.)

use std::fs;

use crate::support::server::{server_demo, Server};
use crate::support::*;

/// `[outbox.smtp]` with a username (and its password's variable) and `tls = "none"` for a
/// relay on another host: `nesca serve` refuses to start, naming the key and the rule; the same
/// relay on this host starts.
#[test]
fn smtp_auth_in_the_clear_to_another_host_stops_serve() {
    let demo = server_demo();
    let config = demo.config();
    let plain = fs::read_to_string(&config).expect("nesca.toml");
    let smtp = |host: &str| {
        format!(
            "{plain}\n[outbox.smtp]\nhost = \"{host}\"\nport = 25\ntls = \"none\"\nusername = \"nesca\"\npassword_env = \"NESCA_E2E_SMTP_PASSWORD\"\n"
        )
    };
    fs::write(&config, smtp("mail.example.com")).expect("write nesca.toml");
    let o = demo.nesca(&["serve", "--config", s(&config)]);
    assert_refusal(
        &o,
        &[
            "outbox.smtp.tls",
            "only for a relay on this host",
            "mail.example.com",
        ],
    );
    // `nesca outbox send` reads the same configuration: refused the same way.
    let o = demo.nesca(&["outbox", "send", "--config", s(&config)]);
    assert_refusal(&o, &["outbox.smtp.tls", "mail.example.com"]);

    fs::write(&config, smtp("127.0.0.1")).expect("write nesca.toml");
    let mut server = Server::serve_with_env(&demo, &[("NESCA_E2E_SMTP_PASSWORD", "not-used")]);
    server.assert_running();
}

/// The lookup by T.C. Kimlik No answers 30 times a minute to one address (the default
/// `server.lookup_per_minute`), then 429 with Retry-After; the lookup by serial is not
/// limited, and the rest of the server answers.
#[test]
fn the_lookup_by_tckn_is_rate_limited_per_client() {
    let demo = server_demo();
    let csr = demo.csr("ayse", Key::P256);
    let (_, serial) = demo.issue_ok(&csr, "ayse.pem", &[]);
    let server = Server::serve(&demo);
    let path = format!("/certificates?tckn={TCKN}");
    for i in 0..30 {
        let r = server.get(&path);
        // 200 with an empty list: publication is opt-in and an operator's issuance never
        // asked its holder; what is counted is the asking.
        assert_eq!(r.status, 200, "lookup {i}: {}", r.describe());
    }
    let r = server.get(&path);
    assert_eq!(r.status, 429, "{}", r.describe());
    let retry: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After: {}", r.describe()));
    assert!((1..=2).contains(&retry), "{}", r.describe());
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("a JSON refusal");
    assert_eq!(v["error"]["field"], "tckn", "{v}");
    // Not limited: the lookup by serial, and everything else.
    for _ in 0..5 {
        // 404: not published (see above), and not 429.
        assert_eq!(server.get(&format!("/certificates/{serial}")).status, 404);
    }
    assert_eq!(server.get("/healthz").status, 200);
    // A bad T.C. Kimlik No counts too (probing is what the limit is for): still 429.
    assert_eq!(server.get("/certificates?tckn=1").status, 429);
}

/// `server.lookup_per_minute` out of range stops the server, naming the key.
#[test]
fn a_lookup_rate_out_of_range_stops_serve() {
    let demo = server_demo();
    let config = demo.config();
    let text = fs::read_to_string(&config).expect("nesca.toml");
    fs::write(
        &config,
        toml_set_raw(&text, "server", "lookup_per_minute", "0"),
    )
    .expect("write nesca.toml");
    let o = demo.nesca(&["serve", "--config", s(&config)]);
    assert_refusal(&o, &["server.lookup_per_minute", "between 1 and 60000"]);
}
