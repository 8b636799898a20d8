//! The SQL driver the shared role modules (`store/sql/`) are compiled against for SQLite:
//! `rusqlite` itself, plus the few helpers whose PostgreSQL twins live in
//! `store/postgres/db.rs`.

pub(super) use rusqlite::{
    params, params_from_iter, Connection, Error, OptionalExtension, Params, Result, Row, ToSql,
    Transaction,
};

/// A column whose stored value nesca cannot read as the type it wants (a damaged row).
pub(super) fn conversion_error(
    index: usize,
    source: Box<dyn std::error::Error + Send + Sync + 'static>,
) -> Error {
    Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, source)
}

/// A text column, borrowed from the row (no allocation: OCSP status lookups read one).
pub(super) fn text<'r>(r: &'r Row<'_>, index: usize) -> Result<&'r str> {
    r.get_ref(index)?
        .as_str()
        .map_err(|e| conversion_error(index, Box::new(e)))
}

/// Whether a column is NULL.
pub(super) fn is_null(r: &Row<'_>, index: usize) -> Result<bool> {
    Ok(matches!(r.get_ref(index)?, rusqlite::types::ValueRef::Null))
}

/// Opens the writer's transaction for one batch. IMMEDIATE takes SQLite's write lock at
/// once, so the audit chain's head read first is still the head when the batch commits.
pub(super) fn begin_batch(conn: &mut Connection) -> Result<Transaction<'_>> {
    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
}

/// Makes `conn` usable after a failed commit: a SQLite connection is a file, always there.
pub(super) fn reopen(_conn: &mut Connection) -> Result<()> {
    Ok(())
}

/// A certificate's profile is stored by its name.
impl rusqlite::ToSql for crate::profile::ProfileName {
    fn to_sql(&self) -> Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::from(self.as_str()))
    }
}

/// A stored profile name that nesca does not issue is a damaged row, refused where it is read.
impl rusqlite::types::FromSql for crate::profile::ProfileName {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let text = value.as_str()?;
        crate::profile::ProfileName::parse(text).ok_or_else(|| {
            rusqlite::types::FromSqlError::Other(
                format!("profile {text:?} is not one nesca issues").into(),
            )
        })
    }
}
