//! Lookups by serial on public paths use an index, never a scan of the certificates table
//!: SQLite's own plan (`EXPLAIN QUERY PLAN`) of each statement, on a
//! store at the current schema.

use super::{applications, certificates, commitments, enrollments, SqliteStore};

/// The `detail` lines of SQLite's plan of `sql` (parameters left unbound: planned as unknown).
fn plan(store: &SqliteStore, sql: &str) -> Vec<String> {
    store
        .read(
            |c| {
                let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                let mut rows = st.raw_query();
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(r.get::<_, String>(3)?);
                }
                Ok(out)
            },
            "plan",
        )
        .unwrap()
}

/// Whether a plan reads a whole table (`SCAN t`, without an index) rather than searching it.
fn scans_a_table(details: &[String]) -> bool {
    details
        .iter()
        .any(|d| d.starts_with("SCAN ") && !d.contains("USING"))
}

#[test]
fn lookups_by_serial_search_an_index_and_never_scan_the_table() {
    let dir = crate::testkit::private_tempdir();
    let store = SqliteStore::open(&dir.path().join("plan.db")).unwrap();
    let commitment = commitments::by_serial_sql();
    let cases: [(&str, &str, &str); 7] = [
        (
            "get(Some(issuer), serial)",
            certificates::GET_BY_ISSUER_AND_SERIAL,
            "sqlite_autoindex_certificates_1",
        ),
        (
            "get(None, serial)",
            certificates::GET_BY_SERIAL,
            "certificates_serial",
        ),
        (
            "public lookup by serial",
            enrollments::LOOKUP_BY_SERIAL,
            "certificates_serial",
        ),
        (
            "public lookup by T.C. Kimlik No",
            enrollments::LOOKUP_BY_HOLDER,
            "certificates_tckn",
        ),
        (
            "issuer of a serial",
            applications::ISSUER_OF_SERIAL,
            "certificates_serial",
        ),
        ("commitment by serial", &commitment, "commitments_serial"),
        (
            "stale reservations",
            certificates::STALE_RESERVATIONS,
            "certificates_reserved",
        ),
    ];
    for (name, sql, index) in cases {
        let details = plan(&store, sql);
        assert!(
            !scans_a_table(&details),
            "{name} scans a table: {details:?}"
        );
        assert!(
            details
                .iter()
                .any(|d| d.starts_with("SEARCH ") && d.contains(index)),
            "{name} does not search {index}: {details:?}"
        );
    }
    // The check itself sees a scan: the form these lookups had before migration 10.
    let old = plan(
        &store,
        "SELECT subject FROM certificates WHERE (?1 IS NULL OR serial = ?1) AND (?2 IS NULL OR issuer = ?2)",
    );
    assert!(scans_a_table(&old), "{old:?}");
}
