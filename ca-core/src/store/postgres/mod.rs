//! PostgreSQL store: the networked store several nodes share.
//!
//! The role modules are the shared ones (`store/sql/`), compiled against this backend's `db` (a
//! `postgres` client that speaks the subset of `rusqlite`'s API they use) and `Backend`. So
//! both stores run the same SQL and the same checks; what differs is here:
//!
//! - Writes go through one writer thread per process that commits what has queued up in one
//!   transaction (group commit), as in SQLite; each transaction first takes an advisory lock
//!   ([`db::WRITER_LOCK`]) that the writers of every node share, so writes are serialised
//!   across nodes as SQLite serialises them within one host: one audit chain, serials
//!   reserved once, every check made inside a write still true when it commits.
//! - Reads take a connection from a bounded pool; long scans (a CRL) get a connection of their
//!   own in a REPEATABLE READ snapshot.
//! - A lost connection (the server restarted) fails the work in flight with a store error
//!   that [`crate::CaError::is_store_unavailable`] recognises, and is replaced by a new one at
//!   the next use: no restart of nesca is needed.

sql_role_modules!();
mod connect;
pub(crate) mod db;
mod migrations;

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub use connect::{PgOptions, PgTls};
pub use db::PgError;

use self::audit::AuditHead;
use self::columns::{bad_column, opt_time_column, tckn_column, time_column};
use self::connect::Connector;
use self::db::Connection;
use self::writer::{Refusal, Writer};
use crate::error::{CaError, Result};

/// The store type the shared role modules implement the traits for.
type Backend = PgStore;

/// How long a read waits for a pooled connection before it gives up.
const POOL_WAIT: Duration = Duration::from_secs(10);

/// The PostgreSQL implementation of [`crate::store::Store`].
pub struct PgStore {
    connector: Arc<Connector>,
    writer: Writer,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    pool: Pool,
    /// Commits heard of through LISTEN, started at the first [`PgStore::wait_for_change_signal`].
    changes: Arc<ChangeSignal>,
    listener: std::sync::OnceLock<Option<JoinHandle<()>>>,
}

/// Whether a commit was heard of since the last wait; set by the listener thread.
#[derive(Default)]
struct ChangeSignal {
    heard: Mutex<bool>,
    woken: Condvar,
    stop: std::sync::atomic::AtomicBool,
}

impl ChangeSignal {
    fn raise(&self) {
        *self.heard.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.woken.notify_all();
    }
}

/// LISTENs to [`db::CHANGES_CHANNEL`] on a connection of its own and raises `signal` for
/// every notification; a lost connection is reopened (and the signal raised, since
/// notifications sent meanwhile are lost) until the store is dropped.
fn listen_loop(connector: Arc<Connector>, signal: Arc<ChangeSignal>) {
    use std::sync::atomic::Ordering;
    let listen = format!("LISTEN {}", db::CHANGES_CHANNEL);
    let mut conn: Option<Connection> = None;
    while !signal.stop.load(Ordering::Relaxed) {
        let Some(c) = conn.as_ref() else {
            match Connection::open(connector.clone()).and_then(|c| {
                c.execute_batch(&listen)?;
                Ok(c)
            }) {
                Ok(c) => {
                    conn = Some(c);
                    signal.raise();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "store change listener cannot connect; retrying");
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
            continue;
        };
        match c.wait_for_notification(Duration::from_millis(250)) {
            Ok(true) => signal.raise(),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "store change listener lost its connection");
                conn = None;
            }
        }
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("connector", &self.connector)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects, runs pending migrations (one node at a time) and starts the writer.
    pub fn open(options: &PgOptions) -> Result<PgStore> {
        let connector = Arc::new(Connector::new(options)?);
        let conn = Connection::open(connector.clone()).map_err(CaError::store("connect"))?;
        migrations::migrate(&conn)?;
        let (writer, writer_thread) = Writer::start(conn)?;
        Ok(PgStore {
            pool: Pool::new(connector.clone(), options.pool_size.max(1)),
            connector,
            writer,
            writer_thread: Mutex::new(Some(writer_thread)),
            changes: Arc::default(),
            listener: std::sync::OnceLock::new(),
        })
    }

    /// Waits until a commit (of any node) is heard of since the last call, or `timeout`.
    fn wait_for_change_signal(&self, timeout: Duration) {
        let listening = self.listener.get_or_init(|| {
            let (connector, signal) = (self.connector.clone(), self.changes.clone());
            std::thread::Builder::new()
                .name("nesca-store-listen".into())
                .spawn(move || listen_loop(connector, signal))
                .inspect_err(|e| {
                    tracing::error!(error = %e, "no store change listener: changes are polled");
                })
                .ok()
        });
        if listening.is_none() {
            std::thread::sleep(timeout);
            return;
        }
        let deadline = std::time::Instant::now() + timeout;
        let mut heard = self.changes.heard.lock().unwrap_or_else(|p| p.into_inner());
        while !*heard {
            let now = std::time::Instant::now();
            if now >= deadline {
                return;
            }
            heard = self
                .changes
                .woken
                .wait_timeout(heard, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *heard = false;
    }

    /// Benchmarks only (`nesca bench crl`): writes `count` revoked certificates with random
    /// serials under `issuer` (one COPY), bypassing issuance and the audit log, and returns
    /// them in serial order with their revocation times. Never call it on a store that holds
    /// real certificates.
    #[doc(hidden)]
    pub fn bench_fill_revoked(
        &self,
        issuer: &crate::serial::IssuerId,
        count: u64,
        at: crate::UnixTime,
    ) -> Result<
        Vec<(
            crate::serial::Serial,
            crate::UnixTime,
            Option<crate::lifecycle::RevocationReason>,
        )>,
    > {
        let rows = super::bench_revoked_rows(count, at);
        let mut text = String::with_capacity(rows.len() * 120);
        for (serial, revoked_at, reason) in &rows {
            use std::fmt::Write;
            let reason = reason.map_or("\\N".to_owned(), |r| r.code().to_string());
            // COPY's text format: tab-separated, \N for NULL, \\x for an empty bytea.
            let _ = writeln!(
                text,
                "{issuer}\t{}\tnes\trevoked\tCN=bench\t{nb}\t{na}\t{nb}\t{nb}\t{}\t{reason}\t\\\\x",
                serial.to_hex(),
                revoked_at.secs(),
                nb = at.plus_secs(-86_400).secs(),
                na = at.plus_secs(3 * 365 * 86_400).secs(),
            );
        }
        let conn =
            Connection::open(self.connector.clone()).map_err(CaError::store("bench fill"))?;
        conn.copy_in(
            "COPY certificates (issuer, serial, profile, status, subject, not_before, not_after, reserved_at, issued_at, revoked_at, reason, tbs_der) FROM STDIN",
            text.as_bytes(),
        )
        .map_err(CaError::store("bench fill"))?;
        Ok(rows)
    }

    /// Queues `write` for the writer and waits until its batch is committed
    /// ([`writer::Writer::submit`]).
    fn submit<T, F>(&self, write: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &mut AuditHead) -> Result<T, Refusal> + Send + 'static,
    {
        self.writer.submit(write)
    }

    /// A connection of its own inside a REPEATABLE READ transaction (one snapshot), with the
    /// snapshot's watermark: the last audit sequence number it includes.
    fn snapshot(&self, operation: &'static str) -> Result<(Connection, i64)> {
        let conn = Connection::open(self.connector.clone()).map_err(CaError::store(operation))?;
        conn.execute_batch("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .map_err(CaError::store(operation))?;
        let watermark: i64 = conn
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM audit", [], |r| r.get(0))
            .map_err(CaError::store(operation))?;
        Ok((conn, watermark))
    }

    /// Runs `f` on a pooled connection (each statement its own snapshot).
    fn read<T>(
        &self,
        f: impl Fn(&Connection) -> db::Result<T>,
        operation: &'static str,
    ) -> Result<T> {
        let conn = self.pool.take().map_err(CaError::store(operation))?;
        let outcome = f(&conn);
        let lost = conn.is_closed();
        self.pool.give_back(conn);
        match outcome {
            // A pooled connection the server had dropped (a restart since its last use)
            // fails its first statement: the read is tried once more on a new connection.
            Err(e) if lost && e.is_unavailable() => {
                let conn = self.pool.take().map_err(CaError::store(operation))?;
                let outcome = f(&conn);
                self.pool.give_back(conn);
                outcome.map_err(CaError::store(operation))
            }
            other => other.map_err(CaError::store(operation)),
        }
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.changes
            .stop
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(Some(t)) = self.listener.take() {
            let _ = t.join();
        }
        self.writer.close();
        if let Some(t) = self
            .writer_thread
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = t.join();
        }
    }
}

/// The readers' connections: at most `size` open, idle ones kept for the next read.
struct Pool {
    connector: Arc<Connector>,
    size: usize,
    state: Mutex<PoolState>,
    freed: Condvar,
}

struct PoolState {
    idle: Vec<Connection>,
    open: usize,
}

impl Pool {
    fn new(connector: Arc<Connector>, size: usize) -> Pool {
        Pool {
            connector,
            size,
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
        }
    }

    /// An open connection: an idle one, a new one while fewer than `size` are open, else the
    /// next one given back (waiting at most [`POOL_WAIT`]).
    fn take(&self) -> db::Result<Connection> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let deadline = std::time::Instant::now() + POOL_WAIT;
        loop {
            if let Some(mut conn) = state.idle.pop() {
                // A connection the server dropped is replaced now rather than failing a read,
                // without holding the pool meanwhile (connecting can take seconds).
                drop(state);
                if conn.ensure_open().is_ok() {
                    return Ok(conn);
                }
                state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                state.open -= 1;
                self.freed.notify_one();
                continue;
            }
            if state.open < self.size {
                state.open += 1;
                drop(state);
                return Connection::open(self.connector.clone()).inspect_err(|_| {
                    self.state.lock().unwrap_or_else(|p| p.into_inner()).open -= 1;
                    self.freed.notify_one();
                });
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return Err(db::PgError::PoolTimeout(POOL_WAIT));
            }
            state = self
                .freed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Returns a connection; a closed one is dropped and its place freed.
    fn give_back(&self, conn: Connection) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if conn.is_closed() {
            state.open -= 1;
        } else {
            state.idle.push(conn);
        }
        self.freed.notify_one();
    }
}

/// A database created empty on a server and dropped with this guard, for tests and
/// benchmarks (`nesca bench … --postgres-url`): named `PREFIX_PID_N_RANDOM`, on the server
/// of `server_url` (whose own database is where `CREATE DATABASE` is issued).
#[doc(hidden)]
pub struct ScratchDatabase {
    server_url: String,
    name: String,
    url: String,
}

impl ScratchDatabase {
    /// Creates the database (the URL must hold no password: trust or a client certificate).
    pub fn create(server_url: &str, prefix: &str) -> Result<ScratchDatabase> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "{prefix}_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>()
        );
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(CaError::invalid("prefix", "letters, digits and _ only"));
        }
        let url = database_url(server_url, &name)?;
        let mut client = postgres::Client::connect(server_url, postgres::NoTls)
            .map_err(|e| CaError::store("connect")(PgError::from(e)))?;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .map_err(|e| CaError::store("create database")(PgError::from(e)))?;
        Ok(ScratchDatabase {
            server_url: server_url.to_owned(),
            url,
            name,
        })
    }

    /// Drops database `name` (letters, digits and `_`) of the server of `server_url`, if it
    /// is there: what a killed benchmark left.
    pub fn drop_named(server_url: &str, name: &str) -> Result<()> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(CaError::invalid("database", "letters, digits and _ only"));
        }
        let mut client = postgres::Client::connect(server_url, postgres::NoTls)
            .map_err(|e| CaError::store("connect")(PgError::from(e)))?;
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .map_err(|e| CaError::store("drop database")(PgError::from(e)))
    }

    /// The new database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let _ = ScratchDatabase::drop_named(&self.server_url, &self.name);
    }
}

/// The URL of database `name` on the server of `server_url`: the URL's database (the last
/// path segment, before any `?parameters`) replaced, its parameters kept
/// (`postgres://u@/postgres?host=/run/postgresql` → `postgres://u@/NAME?host=…`). libpq's
/// key=value form is refused.
pub fn database_url(server_url: &str, name: &str) -> Result<String> {
    let refused = || {
        CaError::invalid(
            "store.postgres_url",
            "must be a URL postgres://USER@HOST:PORT/DATABASE[?PARAMETERS]",
        )
    };
    let (base, params) = match server_url.split_once('?') {
        Some((base, params)) => (base, Some(params)),
        None => (server_url, None),
    };
    let authority_start = base
        .strip_prefix("postgres://")
        .or_else(|| base.strip_prefix("postgresql://"))
        .map(|rest| base.len() - rest.len())
        .ok_or_else(refused)?;
    let path = base[authority_start..].find('/').ok_or_else(refused)? + authority_start;
    let mut url = format!("{}/{name}", &base[..path]);
    if let Some(params) = params {
        url.push('?');
        url.push_str(params);
    }
    Ok(url)
}

/// The store contract ([`crate::store::conformance`]), run against a database of its own on
/// the test server ([`crate::testkit::TestDatabase`]).
#[cfg(test)]
mod conformance {
    use super::PgStore;

    crate::store_conformance_tests!(|| {
        let db = crate::testkit::TestDatabase::create();
        let store = PgStore::open(&db.options()).expect("open store");
        // The store is dropped before the database (fields drop in order).
        (store, db)
    });
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::PgStore;
    use crate::store::prelude::*;

    #[test]
    fn a_database_url_keeps_the_servers_address_and_parameters() {
        use super::database_url;
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:5432/postgres", "x_1").unwrap(),
            "postgres://postgres@127.0.0.1:5432/x_1"
        );
        assert_eq!(
            database_url("postgres://postgres@/postgres?host=/run/postgresql", "x_1").unwrap(),
            "postgres://postgres@/x_1?host=/run/postgresql"
        );
        assert_eq!(
            database_url("postgresql://u@h", "x_1")
                .unwrap_err()
                .to_string(),
            "store.postgres_url: must be a URL postgres://USER@HOST:PORT/DATABASE[?PARAMETERS]"
        );
        assert!(database_url("host=/run/postgresql user=postgres", "x_1").is_err());
    }

    /// The two migration sets make the same tables with the same columns (PostgreSQL adds
    /// `rowid` where reads order by insertion, as SQLite has it implicitly): a migration
    /// added to one backend and not the other fails here.
    #[test]
    fn both_schemas_have_the_same_tables_and_columns() {
        use std::collections::BTreeSet;
        let dir = crate::testkit::private_tempdir();
        let path = dir.path().join("schema.db");
        drop(crate::store::SqliteStore::open(&path).unwrap());
        let sqlite = rusqlite::Connection::open(&path).unwrap();
        let mut lite = BTreeSet::new();
        let tables: Vec<String> = sqlite
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        for table in tables {
            let columns: Vec<String> = sqlite
                .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            lite.extend(columns.into_iter().map(|c| (table.clone(), c)));
        }
        let db = crate::testkit::TestDatabase::create();
        drop(PgStore::open(&db.options()).unwrap());
        let mut client = postgres::Client::connect(&db.url(), postgres::NoTls).unwrap();
        let pg: BTreeSet<(String, String)> = client
            .query(
                "SELECT table_name::text, column_name::text FROM information_schema.columns WHERE table_schema = 'public'",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .filter(|(_, column): &(String, String)| column != "rowid")
            .collect();
        assert!(
            lite.len() > 100,
            "SQLite's schema read: {} columns",
            lite.len()
        );
        assert_eq!(
            lite.difference(&pg).collect::<Vec<_>>(),
            Vec::<&(String, String)>::new(),
            "in SQLite's schema only"
        );
        assert_eq!(
            pg.difference(&lite).collect::<Vec<_>>(),
            Vec::<&(String, String)>::new(),
            "in PostgreSQL's schema only"
        );
    }

    /// Nodes starting together on a new database migrate it once: every one opens, and each
    /// version is recorded once.
    #[test]
    fn nodes_starting_together_migrate_once() {
        let db = crate::testkit::TestDatabase::create();
        let opened: Vec<bool> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| PgStore::open(&db.options()).is_ok()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(opened, vec![true; 4]);
        let mut client = postgres::Client::connect(&db.url(), postgres::NoTls).unwrap();
        let rows = client
            .query("SELECT version FROM schema_version ORDER BY version", &[])
            .unwrap();
        let versions: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        let expected: Vec<i64> = (1..=super::migrations::VERSIONS as i64).collect();
        assert_eq!(versions, expected);
    }

    /// A commit through one store (node) wakes another store's waiter on the same database
    /// at once, not at its timeout.
    #[test]
    fn a_commit_on_one_node_wakes_the_other() {
        let db = crate::testkit::TestDatabase::create();
        let writer = PgStore::open(&db.options()).unwrap();
        let reader = PgStore::open(&db.options()).unwrap();
        // The first wait starts the listener (and may return at once: it raises the signal
        // when it connects, as notifications before it are unknown).
        reader.wait_for_change(Duration::from_millis(500));
        reader.wait_for_change(Duration::from_millis(300));
        let woken = std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                let start = Instant::now();
                reader.wait_for_change(Duration::from_secs(30));
                start.elapsed()
            });
            std::thread::sleep(Duration::from_millis(200));
            crate::store::conformance::issue_one(&writer);
            waiter.join().unwrap()
        });
        assert!(woken < Duration::from_secs(10), "woken after {woken:?}");
        assert!(
            woken >= Duration::from_millis(150),
            "woken before the commit: {woken:?}"
        );
    }
}
