//! Column readers every role module shares: instants, T.C. Kimlik Nos and damaged rows.

use super::db;
use crate::error::CaError;
use crate::UnixTime;

/// Reads an instant column (Unix seconds, as every stored instant is kept).
pub(super) fn time_column(r: &db::Row<'_>, i: usize) -> db::Result<UnixTime> {
    r.get(i).map(UnixTime::from_secs)
}

/// Reads an instant column that may be NULL.
pub(super) fn opt_time_column(r: &db::Row<'_>, i: usize) -> db::Result<Option<UnixTime>> {
    Ok(r.get::<_, Option<i64>>(i)?.map(UnixTime::from_secs))
}

/// A typed column's text that its `parse` refuses: a damaged row, refused where it is read
/// with the parse's error (which names the field and the values it knows).
pub(super) fn bad_column(i: usize, e: CaError) -> db::Error {
    db::conversion_error(i, Box::new(e))
}

/// Reads a T.C. Kimlik No column: a stored value that is not one is a damaged row, refused
/// where it is read.
pub(super) fn tckn_column(r: &db::Row<'_>, i: usize) -> db::Result<crate::Tckn> {
    let text: String = r.get(i)?;
    crate::Tckn::parse(&text).map_err(|e| db::conversion_error(i, Box::new(e)))
}
