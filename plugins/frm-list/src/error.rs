//! [`ListError`]: why a whole file is refused (a problem in one row is a
//! [`RowProblem`](crate::RowProblem), not an error).

use crate::{MAX_FILE_BYTES, MAX_ROWS};

/// Why a list file was refused as a whole. Each message begins with what failed: `file`,
/// `xlsx`, `csv`, `header` or `list`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ListError {
    /// The file name ends in neither `.xlsx` nor `.csv`.
    #[error("file: {name:?} is not a list: the name must end in .xlsx or .csv")]
    UnknownFormat { name: String },

    /// The file is larger than [`MAX_FILE_BYTES`].
    #[error(
        "file: {size} bytes is over the limit of {} bytes (64 MiB)",
        MAX_FILE_BYTES
    )]
    FileTooLarge { size: u64 },

    /// The list has more than [`MAX_ROWS`] non-empty rows after the header.
    #[error(
        "list: more than {} rows, the limit of one list (split it into several files)",
        MAX_ROWS
    )]
    TooManyRows,

    /// The file holds no non-empty row, so no header.
    #[error("list: the file is empty (no header row)")]
    Empty,

    /// Required columns are missing from the header row (canonical names, in the list's order).
    #[error("header: {}", missing_text(.columns))]
    MissingColumns { columns: Vec<&'static str> },

    /// Two header cells name the same column (canonical name, then the two column letters).
    #[error("header: the column {column:?} appears twice (columns {first} and {second})")]
    DuplicateColumn {
        column: &'static str,
        first: String,
        second: String,
    },

    /// The bytes are not a workbook that can be read, or an unusual one refused before
    /// reading (see the crate documentation, "Limits").
    #[error("xlsx: not a readable workbook: {reason}")]
    Xlsx { reason: String },

    /// The workbook holds no worksheet (only chart sheets, or nothing).
    #[error("xlsx: the workbook has no worksheet")]
    NoWorksheet,

    /// The first worksheet could not be read.
    #[error("xlsx: the worksheet {sheet:?} could not be read: {reason}")]
    Worksheet { sheet: String, reason: String },

    /// The csv is not UTF-8.
    #[error(
        "csv: line {line} is not UTF-8 text (save the list as \"CSV UTF-8\"; \
         other encodings such as Windows-1254 are not read)"
    )]
    CsvNotUtf8 { line: u64 },

    /// The csv could not be parsed.
    #[error("csv: line {line}: {reason}")]
    Csv { line: u64, reason: String },
}

fn missing_text(columns: &[&'static str]) -> String {
    let quoted: Vec<String> = columns.iter().map(|c| format!("{c:?}")).collect();
    match quoted.as_slice() {
        [one] => format!("the column {one} is missing"),
        _ => format!("the columns {} are missing", quoted.join(", ")),
    }
}
