//! The SQL driver the shared role modules (`store/sql/`) are compiled against for
//! PostgreSQL: the subset of `rusqlite`'s API they use (`Connection`, `Statement`, `Row`,
//! `params!`, `OptionalExtension`), over the synchronous `postgres` client.
//!
//! The role modules' SQL is written once, in the dialect both servers accept; what differs is
//! translated here when a statement is prepared: SQLite's numbered placeholders `?N` become
//! `$N`, and SQLite's index hints (`INDEXED BY name`) are dropped. Every integer column is
//! `BIGINT`, every text `TEXT`, every blob `BYTEA` (`migrations.rs`), so values travel as
//! `i64`, `&str` and `&[u8]` as they do in SQLite; a parameter is encoded for whatever type
//! the server inferred for its placeholder.

use std::cell::RefCell;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use postgres::types::{FromSql, IsNull, ToSql as PgToSql, Type};

use super::connect::Connector;

/// A failure of the PostgreSQL store: the server's or the connection's error, a column nesca
/// cannot read as the type it wants, or no row where one was required.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// The server refused the statement, or the connection failed (`source`: the client's
    /// error, with the SQLSTATE when the server sent one).
    #[error("postgres: {}", describe(source))]
    Server {
        #[from]
        source: postgres::Error,
    },
    /// A column holds a value nesca cannot read as the type it wants (a damaged row).
    #[error("column {index}: {source}")]
    Column {
        index: usize,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// `query_row` found no row.
    #[error("query returned no rows")]
    NoRows,
    /// Writing a `COPY`'s data failed.
    #[error("COPY: {0}")]
    Copy(#[source] std::io::Error),
    /// Every pooled connection stayed busy for this long.
    #[error("no pooled connection came free within {0:?}")]
    PoolTimeout(std::time::Duration),
}

impl PgError {
    /// The server cannot be reached, the connection was lost, or the store is too busy now
    /// (not a refusal of the SQL): a closed connection, an I/O failure, SQLSTATE class 08,
    /// 57P01–57P03 (the server shutting down or starting up), 53300 (no connection free),
    /// 55P03 and 57014 (a lock or a statement past its time limit).
    pub fn is_unavailable(&self) -> bool {
        let source = match self {
            PgError::Server { source } => source,
            PgError::PoolTimeout(_) => return true,
            PgError::Copy(_) => return true,
            PgError::Column { .. } | PgError::NoRows => return false,
        };
        if source.is_closed() {
            return true;
        }
        if let Some(code) = source.code() {
            let code = code.code();
            // 08: connection exception; 57P01-03: shutdown, startup; 53300: too many
            // connections; 55P03: a lock not had within lock_timeout (another node's
            // transaction held it); 57014: a statement cancelled at statement_timeout.
            return code.starts_with("08")
                || matches!(
                    code,
                    "57P01" | "57P02" | "57P03" | "53300" | "55P03" | "57014"
                );
        }
        std::error::Error::source(source).is_some_and(|s| s.is::<std::io::Error>())
    }
}

/// The client's error with the server's message and SQLSTATE, or the cause beneath it
/// (`postgres::Error`'s own text is only its kind: "db error", "error connecting to server").
fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} ({}): {}", db.severity(), db.code().code(), db.message());
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// The error type the role modules see (`db::Error`).
pub(super) type Error = PgError;
/// The result type the role modules see (`db::Result`).
pub(super) type Result<T, E = PgError> = std::result::Result<T, E>;

/// A column whose stored value nesca cannot read as the type it wants (a damaged row).
pub(super) fn conversion_error(
    index: usize,
    source: Box<dyn std::error::Error + Send + Sync + 'static>,
) -> Error {
    PgError::Column { index, source }
}

/// One parameter value, as the role modules bind it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Value<'a> {
    Null,
    Integer(i64),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// A value the role modules bind to a placeholder (`rusqlite::ToSql`'s counterpart).
pub(super) trait ToSql {
    fn to_value(&self) -> Value<'_>;
}

macro_rules! integer_to_sql {
    ($($t:ty),*) => {$(
        impl ToSql for $t {
            fn to_value(&self) -> Value<'_> {
                Value::Integer(i64::from(*self))
            }
        }
    )*};
}
integer_to_sql!(i64, i32, u32, u16, u8, bool);

impl ToSql for str {
    fn to_value(&self) -> Value<'_> {
        Value::Text(self)
    }
}
impl ToSql for String {
    fn to_value(&self) -> Value<'_> {
        Value::Text(self)
    }
}
impl ToSql for [u8] {
    fn to_value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}
impl ToSql for Vec<u8> {
    fn to_value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}
impl<const N: usize> ToSql for [u8; N] {
    fn to_value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}
impl<T: ToSql + ?Sized> ToSql for &T {
    fn to_value(&self) -> Value<'_> {
        (**self).to_value()
    }
}
impl<T: ToSql> ToSql for Option<T> {
    fn to_value(&self) -> Value<'_> {
        self.as_ref().map_or(Value::Null, ToSql::to_value)
    }
}
/// A certificate's profile is stored by its name.
impl ToSql for crate::profile::ProfileName {
    fn to_value(&self) -> Value<'_> {
        Value::Text(self.as_str())
    }
}

/// The parameters of one statement (`rusqlite::Params`' counterpart).
pub(super) trait Params {
    /// Calls `f` with the values bound.
    fn with_values<R>(self, f: impl FnOnce(&[Value<'_>]) -> R) -> R;
}

impl Params for &[&dyn ToSql] {
    fn with_values<R>(self, f: impl FnOnce(&[Value<'_>]) -> R) -> R {
        let values: Vec<Value<'_>> = self.iter().map(|p| p.to_value()).collect();
        f(&values)
    }
}

impl Params for [&dyn ToSql; 0] {
    fn with_values<R>(self, f: impl FnOnce(&[Value<'_>]) -> R) -> R {
        f(&[])
    }
}

macro_rules! array_params {
    ($($n:literal),*) => {$(
        impl<T: ToSql> Params for [T; $n] {
            fn with_values<R>(self, f: impl FnOnce(&[Value<'_>]) -> R) -> R {
                let values: Vec<Value<'_>> = self.iter().map(ToSql::to_value).collect();
                f(&values)
            }
        }
    )*};
}
array_params!(1, 2, 3, 4, 5, 6, 7, 8);

/// Parameters from an iterator (`rusqlite::params_from_iter`'s counterpart).
pub(super) struct ParamsFromIter<I>(I);

/// Binds the items of `iter` in order.
pub(super) fn params_from_iter<I>(iter: I) -> ParamsFromIter<I>
where
    I: IntoIterator,
    I::Item: ToSql,
{
    ParamsFromIter(iter)
}

impl<I> Params for ParamsFromIter<I>
where
    I: IntoIterator,
    I::Item: ToSql,
{
    fn with_values<R>(self, f: impl FnOnce(&[Value<'_>]) -> R) -> R {
        let items: Vec<I::Item> = self.0.into_iter().collect();
        let values: Vec<Value<'_>> = items.iter().map(ToSql::to_value).collect();
        f(&values)
    }
}

/// `rusqlite::params!`'s counterpart: the values as a slice of [`ToSql`].
macro_rules! params {
    () => {
        &[] as &[&dyn $crate::store::postgres::db::ToSql]
    };
    ($($v:expr),+ $(,)?) => {
        &[$(&$v as &dyn $crate::store::postgres::db::ToSql),+] as &[&dyn $crate::store::postgres::db::ToSql]
    };
}
pub(super) use params;

/// A value is encoded for the type the server inferred for its placeholder: an integer for
/// `bigint` (or `integer`, range-checked), text for `text`, bytes for `bytea`. Anything else
/// is refused: a placeholder whose type drifted fails instead of being converted.
impl PgToSql for Value<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match (*self, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Integer(i), &Type::INT8) => i.to_sql(ty, out),
            // An integer the server typed as `integer` (a literal's type spread to its
            // placeholder): checked, never truncated.
            (Value::Integer(i), &Type::INT4) => i32::try_from(i)?.to_sql(ty, out),
            (Value::Text(s), &Type::TEXT | &Type::VARCHAR) => s.to_sql(ty, out),
            (Value::Blob(b), &Type::BYTEA) => b.to_sql(ty, out),
            (v, ty) => Err(format!("cannot bind {v:?} to a parameter of type {ty}").into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// One column's value as read, for whatever type the server sent.
pub(super) enum Cell {
    Null,
    Integer(i64),
    Text(String),
    Blob(Vec<u8>),
}

impl<'a> FromSql<'a> for Cell {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(match *ty {
            Type::INT8 => Cell::Integer(i64::from_sql(ty, raw)?),
            Type::INT4 => Cell::Integer(i32::from_sql(ty, raw)?.into()),
            Type::INT2 => Cell::Integer(i16::from_sql(ty, raw)?.into()),
            // What `EXISTS (…)` and comparisons in a select list return, read as SQLite's
            // 0 and 1.
            Type::BOOL => Cell::Integer(bool::from_sql(ty, raw)?.into()),
            Type::TEXT | Type::VARCHAR => Cell::Text(String::from_sql(ty, raw)?),
            Type::BYTEA => Cell::Blob(Vec::<u8>::from_sql(ty, raw)?),
            _ => return Err(format!("nesca does not read columns of type {ty}").into()),
        })
    }

    fn from_sql_null(
        _: &Type,
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Cell::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A value the role modules read from a column (`rusqlite::types::FromSql`'s counterpart).
pub(super) trait FromColumn: Sized {
    fn from_cell(cell: Cell) -> std::result::Result<Self, String>;
}

fn mismatch(cell: &Cell, wanted: &str) -> String {
    let found = match cell {
        Cell::Null => "NULL",
        Cell::Integer(_) => "an integer",
        Cell::Text(_) => "text",
        Cell::Blob(_) => "bytes",
    };
    format!("{found} where {wanted} was expected")
}

macro_rules! integer_from_column {
    ($($t:ty),*) => {$(
        impl FromColumn for $t {
            fn from_cell(cell: Cell) -> std::result::Result<Self, String> {
                match cell {
                    Cell::Integer(i) => <$t>::try_from(i).map_err(|e| e.to_string()),
                    other => Err(mismatch(&other, "an integer")),
                }
            }
        }
    )*};
}
integer_from_column!(i64, i32, u32, u64, usize);

impl FromColumn for bool {
    fn from_cell(cell: Cell) -> std::result::Result<Self, String> {
        match cell {
            Cell::Integer(i) => Ok(i != 0),
            other => Err(mismatch(&other, "a boolean")),
        }
    }
}
impl FromColumn for String {
    fn from_cell(cell: Cell) -> std::result::Result<Self, String> {
        match cell {
            Cell::Text(s) => Ok(s),
            other => Err(mismatch(&other, "text")),
        }
    }
}
impl FromColumn for Vec<u8> {
    fn from_cell(cell: Cell) -> std::result::Result<Self, String> {
        match cell {
            Cell::Blob(b) => Ok(b),
            other => Err(mismatch(&other, "bytes")),
        }
    }
}
impl<T: FromColumn> FromColumn for Option<T> {
    fn from_cell(cell: Cell) -> std::result::Result<Self, String> {
        match cell {
            Cell::Null => Ok(None),
            other => T::from_cell(other).map(Some),
        }
    }
}
/// A stored profile name that nesca does not issue is a damaged row, refused where it is read.
impl FromColumn for crate::profile::ProfileName {
    fn from_cell(cell: Cell) -> std::result::Result<Self, String> {
        let text = String::from_cell(cell)?;
        crate::profile::ProfileName::parse(&text)
            .ok_or_else(|| format!("profile {text:?} is not one nesca issues"))
    }
}

/// A column index (`rusqlite::RowIndex`'s counterpart; nesca reads columns by position).
pub(super) trait ColumnIndex {
    fn index(self) -> usize;
}
impl ColumnIndex for usize {
    fn index(self) -> usize {
        self
    }
}

/// One row of a result.
pub(super) struct Row<'a> {
    row: postgres::Row,
    _statement: PhantomData<&'a ()>,
}

impl Row<'_> {
    /// The column at `index`, as `T`.
    pub(super) fn get<I: ColumnIndex, T: FromColumn>(&self, index: I) -> Result<T> {
        let index = index.index();
        let cell: Cell = self.row.try_get(index)?;
        T::from_cell(cell).map_err(|e| conversion_error(index, e.into()))
    }
}

/// A text column, borrowed from the row.
pub(super) fn text<'r>(r: &'r Row<'_>, index: usize) -> Result<&'r str> {
    match r.row.try_get::<_, Option<&str>>(index)? {
        Some(s) => Ok(s),
        None => Err(conversion_error(
            index,
            "NULL where text was expected".into(),
        )),
    }
}

/// Whether a column is NULL.
pub(super) fn is_null(r: &Row<'_>, index: usize) -> Result<bool> {
    Ok(matches!(r.row.try_get::<_, Cell>(index)?, Cell::Null))
}

/// `rusqlite::OptionalExtension`'s counterpart: no row is `None`.
pub(super) trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(t) => Ok(Some(t)),
            Err(PgError::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The rows of a query, read in full.
pub(super) struct Rows<'a> {
    rows: std::vec::IntoIter<postgres::Row>,
    current: Option<Row<'a>>,
}

impl<'a> Rows<'a> {
    /// The next row, `None` after the last.
    pub(super) fn next(&mut self) -> Result<Option<&Row<'a>>> {
        self.current = self.rows.next().map(|row| Row {
            row,
            _statement: PhantomData,
        });
        Ok(self.current.as_ref())
    }
}

/// A prepared statement on a connection.
pub(super) struct Statement<'c> {
    conn: &'c Connection,
    statement: postgres::Statement,
}

impl<'c> Statement<'c> {
    fn run(&self, params: impl Params) -> Result<Vec<postgres::Row>> {
        params.with_values(|values| {
            let refs: Vec<&(dyn PgToSql + Sync)> =
                values.iter().map(|v| v as &(dyn PgToSql + Sync)).collect();
            Ok(self
                .conn
                .client
                .borrow_mut()
                .query(&self.statement, &refs)?)
        })
    }

    /// Runs a statement that returns no rows; how many rows it changed.
    pub(super) fn execute(&mut self, params: impl Params) -> Result<usize> {
        params.with_values(|values| {
            let refs: Vec<&(dyn PgToSql + Sync)> =
                values.iter().map(|v| v as &(dyn PgToSql + Sync)).collect();
            let n = self
                .conn
                .client
                .borrow_mut()
                .execute(&self.statement, &refs)?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    /// The first row through `f`; [`PgError::NoRows`] when there is none.
    pub(super) fn query_row<T>(
        &mut self,
        params: impl Params,
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        let row = self
            .run(params)?
            .into_iter()
            .next()
            .ok_or(PgError::NoRows)?;
        f(&Row {
            row,
            _statement: PhantomData,
        })
    }

    /// Every row through `f`.
    pub(super) fn query_map<T>(
        &mut self,
        params: impl Params,
        mut f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<std::vec::IntoIter<Result<T>>> {
        let rows = self.run(params)?;
        Ok(rows
            .into_iter()
            .map(|row| {
                f(&Row {
                    row,
                    _statement: PhantomData,
                })
            })
            .collect::<Vec<_>>()
            .into_iter())
    }

    /// Whether the query returns a row.
    pub(super) fn exists(&mut self, params: impl Params) -> Result<bool> {
        Ok(!self.run(params)?.is_empty())
    }

    /// The rows, to step through.
    pub(super) fn query(&mut self, params: impl Params) -> Result<Rows<'c>> {
        Ok(Rows {
            rows: self.run(params)?.into_iter(),
            current: None,
        })
    }
}

/// A connection to the server, with its prepared statements; reconnects when it finds itself
/// closed at the start of a unit of work ([`Connection::ensure_open`]).
pub(super) struct Connection {
    client: RefCell<postgres::Client>,
    prepared: RefCell<HashMap<String, postgres::Statement>>,
    connector: Arc<Connector>,
}

impl Connection {
    /// Connects.
    pub(super) fn open(connector: Arc<Connector>) -> Result<Connection> {
        Ok(Connection {
            client: RefCell::new(connector.connect()?),
            prepared: RefCell::new(HashMap::new()),
            connector,
        })
    }

    /// Whether the connection is gone (the server restarted, the network failed).
    pub(super) fn is_closed(&self) -> bool {
        self.client.borrow().is_closed()
    }

    /// Reconnects when the connection is gone; its prepared statements go with it.
    pub(super) fn ensure_open(&mut self) -> Result<()> {
        if self.is_closed() {
            *self.client.get_mut() = self.connector.connect()?;
            self.prepared.get_mut().clear();
        }
        Ok(())
    }

    /// Prepares `sql` (translated), reusing the connection's earlier preparation of it.
    pub(super) fn prepare_cached(&self, sql: &str) -> Result<Statement<'_>> {
        if let Some(statement) = self.prepared.borrow().get(sql) {
            return Ok(Statement {
                conn: self,
                statement: statement.clone(),
            });
        }
        let statement = self.client.borrow_mut().prepare(&translate(sql))?;
        self.prepared
            .borrow_mut()
            .insert(sql.to_owned(), statement.clone());
        Ok(Statement {
            conn: self,
            statement,
        })
    }

    /// Prepares `sql` (translated).
    pub(super) fn prepare(&self, sql: &str) -> Result<Statement<'_>> {
        self.prepare_cached(sql)
    }

    /// The first row of one statement through `f`.
    pub(super) fn query_row<T>(
        &self,
        sql: &str,
        params: impl Params,
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }

    /// Feeds `data` to a `COPY … FROM STDIN` statement; how many rows it wrote.
    pub(super) fn copy_in(&self, sql: &str, data: &[u8]) -> Result<u64> {
        use std::io::Write;
        let mut client = self.client.borrow_mut();
        let mut writer = client.copy_in(sql)?;
        writer.write_all(data).map_err(PgError::Copy)?;
        Ok(writer.finish()?)
    }

    /// Waits up to `timeout` for a notification on a channel this connection LISTENs to;
    /// whether one came (several that came together count once).
    pub(super) fn wait_for_notification(&self, timeout: std::time::Duration) -> Result<bool> {
        let mut client = self.client.borrow_mut();
        let mut notifications = client.notifications();
        let mut iter = notifications.timeout_iter(timeout);
        let came = postgres::fallible_iterator::FallibleIterator::next(&mut iter)?.is_some();
        drop(iter);
        // Take whatever else is queued without waiting.
        let mut rest = notifications.iter();
        while postgres::fallible_iterator::FallibleIterator::next(&mut rest)?.is_some() {}
        Ok(came)
    }

    /// Runs statements without parameters (simple query protocol).
    pub(super) fn execute_batch(&self, sql: &str) -> Result<()> {
        Ok(self.client.borrow_mut().batch_execute(sql)?)
    }
}

/// The advisory lock every writer's transaction takes first, on every node: the writes of
/// all nodes are serialised as SQLite's one writer serialises them, so the audit chain's head
/// a batch reads is the head it appends to (one chain, no fork), and a check made inside a
/// write still holds when it commits. The OCSP refreshers' change cursor and the delta CRLs'
/// watermarks (audit sequence numbers) rely on it too: commits happen in the order of their
/// numbers, so a reader that has seen number N has seen every change up to N. Never drop it.
pub(super) const WRITER_LOCK: i64 = 0x6e65_7363_6101;

/// The notification channel every writer's commit notifies: the OCSP refreshers of every
/// node wake on it instead of waiting for their next poll.
pub(super) const CHANGES_CHANNEL: &str = "nesca_changes";

/// The writer's open transaction for one batch; rolled back when dropped uncommitted.
pub(super) struct Batch<'c> {
    conn: &'c mut Connection,
    open: bool,
}

impl std::ops::Deref for Batch<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Batch<'_> {
    /// Commits the batch, and tells every node listening ([`CHANGES_CHANNEL`]) that the store
    /// changed (PostgreSQL delivers the notification at commit, and only then).
    pub(super) fn commit(mut self) -> Result<()> {
        self.open = false;
        let committed = self
            .conn
            .execute_batch(&format!("NOTIFY {CHANGES_CHANNEL}; COMMIT"));
        if committed.is_err() && !self.conn.is_closed() {
            // A NOTIFY that failed leaves the transaction open and aborted: end it, or the
            // next batch's BEGIN fails on this connection.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        committed
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        if self.open {
            // A connection that failed mid-batch is closed; the server rolls back by itself.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// Makes `conn` usable after a failed commit: connects again when the connection is gone.
pub(super) fn reopen(conn: &mut Connection) -> Result<()> {
    conn.ensure_open()
}

/// Opens the writer's transaction for one batch, reconnecting first if the connection was
/// lost, and takes [`WRITER_LOCK`] (held until commit or rollback).
pub(super) fn begin_batch(conn: &mut Connection) -> Result<Batch<'_>> {
    conn.ensure_open()?;
    // One round trip for both. A lock not had (lock_timeout) leaves the transaction open
    // and aborted: it is ended here.
    let begun = conn.execute_batch(&format!(
        "BEGIN; SELECT pg_advisory_xact_lock({WRITER_LOCK})"
    ));
    if let Err(e) = begun {
        if !conn.is_closed() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        return Err(e);
    }
    Ok(Batch { conn, open: true })
}

/// The role modules' SQL in PostgreSQL's spelling: `?N` placeholders become `$N`, and
/// SQLite's `INDEXED BY name` hints go. String literals are left as they are.
pub(super) fn translate(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut in_literal = false;
    let mut chars = sql.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            in_literal = !in_literal;
            out.push(c);
        } else if in_literal {
            out.push(c);
        } else if c == '?' {
            out.push('$');
        } else if c == 'I' && sql[i..].starts_with("INDEXED BY ") {
            // Skip the hint and its index name.
            let rest = &sql[i + "INDEXED BY ".len()..];
            let name_len = rest
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                .unwrap_or(rest.len());
            let skip = "INDEXED BY ".len() + name_len;
            while chars.peek().is_some_and(|&(j, _)| j < i + skip) {
                chars.next();
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::translate;

    #[test]
    fn placeholders_and_index_hints_are_translated_outside_literals() {
        assert_eq!(
            translate("SELECT a FROM t INDEXED BY t_idx WHERE a = ?1 AND b = '?2' AND c = ?12"),
            "SELECT a FROM t  WHERE a = $1 AND b = '?2' AND c = $12"
        );
        assert_eq!(
            translate("SELECT 'it''s' WHERE x = ?3"),
            "SELECT 'it''s' WHERE x = $3"
        );
    }
}
