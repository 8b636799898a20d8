//! Demos whose store is PostgreSQL: a database of their own on the test server
//! (`NESCA_TEST_POSTGRES_URL`, by default the local server as `postgres`), dropped with the
//! demo; and the configurations of several nodes sharing it and the demo's token.

use std::path::PathBuf;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

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
    /// Held while the demo lives: the tests of this process that use the server share it,
    /// one that restarts the server has it alone.
    _server: ServerTurn,
}

/// A test's share of the PostgreSQL server (see [`PgDemo::init_exclusive`]).
enum ServerTurn {
    Shared(#[allow(dead_code)] RwLockReadGuard<'static, ()>),
    Exclusive(#[allow(dead_code)] RwLockWriteGuard<'static, ()>),
}

/// The tests of this process that use the PostgreSQL server: shared, or one alone.
static SERVER: RwLock<()> = RwLock::new(());

/// Restarts the local PostgreSQL server (Debian's cluster `15/main`, or the one
/// `NESCA_TEST_POSTGRES_CLUSTER` names as `VERSION/NAME`), waiting until it accepts
/// connections again; only a test that has the server alone ([`PgDemo::init_exclusive`])
/// may. `stopped` runs while it is down.
#[track_caller]
pub(crate) fn restart_server(_alone: &PgDemo, stopped: impl FnOnce()) {
    let cluster = std::env::var("NESCA_TEST_POSTGRES_CLUSTER").unwrap_or_else(|_| "15/main".into());
    let (version, name) = cluster.split_once('/').expect("VERSION/NAME");
    let ctl = |action: &str| {
        let out = std::process::Command::new("pg_ctlcluster")
            .args([version, name, action])
            .output()
            .unwrap_or_else(|e| panic!("pg_ctlcluster {action}: {e}"));
        assert!(
            out.status.success(),
            "pg_ctlcluster {version} {name} {action}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    ctl("stop");
    stopped();
    ctl("start");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while postgres_ready().is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "PostgreSQL did not come back within 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Whether the test server accepts a connection now.
fn postgres_ready() -> Result<(), String> {
    postgres::Client::connect(&test_server_url(), postgres::NoTls)
        .map(drop)
        .map_err(|e| e.to_string())
}

impl PgDemo {
    /// Creates the database and the demo on it; panics unless both succeed.
    #[track_caller]
    pub(crate) fn init() -> PgDemo {
        let turn = ServerTurn::Shared(SERVER.read().unwrap_or_else(|p| p.into_inner()));
        PgDemo::init_taking(turn)
    }

    /// [`PgDemo::init`], with the server to this test alone (it may restart it:
    /// [`restart_server`]).
    #[track_caller]
    pub(crate) fn init_exclusive() -> PgDemo {
        let turn = ServerTurn::Exclusive(SERVER.write().unwrap_or_else(|p| p.into_inner()));
        PgDemo::init_taking(turn)
    }

    #[track_caller]
    fn init_taking(turn: ServerTurn) -> PgDemo {
        let server = test_server_url();
        let db = ScratchDatabase::create(&server, "nesca_e2e")
            .unwrap_or_else(|e| panic!("create a database on {server}: {e}"));
        let demo = Demo::init_fresh(&["--public-url", super::LINT_URL, "--postgres-url", db.url()]);
        server_demo_config(&demo.config());
        PgDemo {
            demo,
            db,
            _server: turn,
        }
    }

    /// A node's configuration `NAME.toml` beside the demo's: a copy of `nesca.toml` (the same
    /// database, the same token, the same CRL directory), with listeners of its own on port
    /// 0. Its relative paths resolve against the demo's directory, as the original's do.
    pub(crate) fn node_config(&self, name: &str) -> PathBuf {
        let text = std::fs::read_to_string(self.demo.config()).expect("nesca.toml");
        let text = toml_replace(&text, "admin", "listen", "127.0.0.1:0");
        let text = toml_replace(&text, "portal", "listen", "127.0.0.1:0");
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
