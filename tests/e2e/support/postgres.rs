//! Demos whose store is PostgreSQL: a database of their own on the test server
//! (`NESCA_TEST_POSTGRES_URL`, by default the local server as `postgres`), dropped with the
//! demo; and the configurations of several nodes sharing it and the demo's token.

use std::path::PathBuf;

use ca_core::store::ScratchDatabase;

use super::server::server_demo_config;
use super::{s, toml_replace, Demo};

/// The PostgreSQL server tests create their databases on.
pub(crate) fn test_server_url() -> String {
    std::env::var("NESCA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A demo (`nesca init --demo --public-url LINT_URL --postgres-url URL`) on a database of its
/// own, configured as [`super::server::server_demo`] is (listeners on port 0, OCSP polling
/// every 50 ms). The database goes when this does (after the demo's servers: drop them
/// first).
pub(crate) struct PgDemo {
    pub demo: Demo,
    pub db: ScratchDatabase,
}

impl PgDemo {
    /// Creates the database and the demo on it; panics unless both succeed.
    #[track_caller]
    pub(crate) fn init() -> PgDemo {
        let server = test_server_url();
        let db = ScratchDatabase::create(&server, "nesca_e2e")
            .unwrap_or_else(|e| panic!("create a database on {server}: {e}"));
        let demo = Demo::init_fresh(&["--public-url", super::LINT_URL, "--postgres-url", db.url()]);
        server_demo_config(&demo.config());
        PgDemo { demo, db }
    }

    /// A node's configuration `NAME.toml` beside the demo's: a copy of `nesca.toml` (the same
    /// database, the same token, the same CRL directory), with listeners of its own on port
    /// 0. Its relative paths resolve against the demo's directory, as the original's do.
    pub(crate) fn node_config(&self, name: &str) -> PathBuf {
        let text = std::fs::read_to_string(self.demo.config()).expect("nesca.toml");
        let text = toml_replace(&text, "admin", "listen", "127.0.0.1:0");
        let path = self.demo.dir.join(format!("{name}.toml"));
        std::fs::write(&path, text).expect("write the node's configuration");
        path
    }

    /// `nesca ARGS…` with `--config CONFIG` appended.
    pub(crate) fn nesca_with(&self, config: &std::path::Path, args: &[&str]) -> super::Output {
        let mut all = args.to_vec();
        all.extend(["--config", s(config)]);
        self.demo.nesca(&all)
    }
}
