//! Reading the first worksheet of an xlsx with calamine, cell by cell (the worksheet is
//! streamed; only one row is held at a time).

use std::io::Cursor;
use std::panic::{self, AssertUnwindSafe};

use calamine::{DataRef, Reader, SheetType, SheetVisible, Xlsx};

use crate::check::{ListBuilder, MAX_COLUMNS};
use crate::{zipguard, ListError};

/// Most cells (empty ones included) read from the worksheet.
pub const MAX_CELLS: u64 = 20_000_000;

pub(crate) fn read(bytes: &[u8], list: &mut ListBuilder) -> Result<(), ListError> {
    zipguard::check(bytes)?;
    // calamine can panic on some malformed XML (cell references that overflow its counters
    // panic in builds with overflow checks): that is a refused file, not a crash.
    panic::catch_unwind(AssertUnwindSafe(|| read_workbook(bytes, list))).unwrap_or_else(|_| {
        Err(ListError::Xlsx {
            reason: "the workbook's XML is malformed".into(),
        })
    })
}

fn read_workbook(bytes: &[u8], list: &mut ListBuilder) -> Result<(), ListError> {
    let mut workbook = Xlsx::new(Cursor::new(bytes)).map_err(|e| ListError::Xlsx {
        reason: e.to_string(),
    })?;
    let sheets = workbook.sheets_metadata().to_vec();
    let mut worksheets = sheets.iter().filter(|s| s.typ == SheetType::WorkSheet);
    let sheet = worksheets.next().ok_or(ListError::NoWorksheet)?;
    let others = worksheets.count();
    if others > 0 {
        list.warn(format!(
            "xlsx: the workbook has {} worksheets; only the first, {:?}, is read",
            others + 1,
            sheet.name
        ));
    }
    if sheet.visible != SheetVisible::Visible {
        list.warn(format!(
            "xlsx: the worksheet {:?} is hidden; it is read all the same",
            sheet.name
        ));
    }
    let failed = |reason: String| ListError::Worksheet {
        sheet: sheet.name.clone(),
        reason,
    };
    let mut cells = workbook
        .worksheet_cells_reader(&sheet.name)
        .map_err(|e| failed(e.to_string()))?;
    let mut row_cells: Vec<(u32, String)> = Vec::new();
    let mut current: Option<u32> = None;
    let mut count = 0u64;
    while let Some(cell) = cells.next_cell().map_err(|e| failed(e.to_string()))? {
        count += 1;
        if count > MAX_CELLS {
            return Err(failed(format!("more than {MAX_CELLS} cells")));
        }
        let (row, column) = cell.get_position();
        if column >= MAX_COLUMNS {
            return Err(failed(format!(
                "it has a cell beyond column XFD (row {})",
                u64::from(row) + 1
            )));
        }
        match current {
            Some(r) if r == row => {}
            Some(r) if row < r => {
                return Err(failed(format!(
                    "its rows are out of order (row {} after row {})",
                    u64::from(row) + 1,
                    u64::from(r) + 1
                )))
            }
            Some(r) => {
                list.push_row(r.saturating_add(1), &row_cells)?;
                row_cells.clear();
                current = Some(row);
            }
            None => current = Some(row),
        }
        if let Some(text) = cell_text(cell.get_value()) {
            row_cells.push((column, text));
        }
    }
    if let Some(r) = current {
        list.push_row(r.saturating_add(1), &row_cells)?;
    }
    Ok(())
}

/// A cell's text: strings as they are, numbers without an exponent or a trailing ".0"
/// (a T.C. Kimlik No typed as a number is its 11 digits), errors as Excel shows them.
pub(crate) fn cell_text(value: &DataRef<'_>) -> Option<String> {
    let text = match value {
        DataRef::Empty => return None,
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_string(),
        DataRef::Int(i) => i.to_string(),
        DataRef::Float(f) => number_text(*f),
        DataRef::DateTime(d) => number_text(d.as_f64()),
        DataRef::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
        DataRef::Error(e) => e.to_string(),
    };
    if text.trim().is_empty() {
        None
    } else {
        Some(text)
    }
}

/// A number as a person typed it: integers exactly (below 2^53, where every integer is an
/// f64), others in Rust's shortest round-trip form, which never uses an exponent.
pub(crate) fn number_text(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_typed() {
        assert_eq!(number_text(10_000_000_146.0), "10000000146");
        assert_eq!(number_text(1.0000000146e10), "10000000146");
        assert_eq!(number_text(5_321_234_567.0), "5321234567");
        assert_eq!(number_text(-3.0), "-3");
        assert_eq!(number_text(1.5), "1.5");
        assert_eq!(number_text(0.0), "0");
        assert_eq!(number_text(f64::NAN), "NaN");
        assert_eq!(
            cell_text(&DataRef::Float(17_291_716_060.0)).as_deref(),
            Some("17291716060")
        );
        assert_eq!(
            cell_text(&DataRef::Int(17_291_716_060)).as_deref(),
            Some("17291716060")
        );
        assert_eq!(cell_text(&DataRef::SharedString("  ")), None);
        assert_eq!(cell_text(&DataRef::Empty), None);
        assert_eq!(cell_text(&DataRef::Bool(true)).as_deref(), Some("TRUE"));
        assert_eq!(
            cell_text(&DataRef::Error(calamine::CellErrorType::NA)).as_deref(),
            Some("#N/A")
        );
    }
}
