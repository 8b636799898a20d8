//! The FRM.01.03 application list of nesca's institutional channel: reading it from xlsx or csv,
//! checking every row, and the per-row report (docs/STANDARDS.md "The Turkish channels",
//! Institutional batch; issue 5 "Import"). The `batch-import` plugin and the `nesca import` command
//! both read lists through [`read_list`]; what they do with the rows (pre-applications, open
//! applications, idempotence per institution) is theirs.
//!
//! # The list (nesca's format of FRM.01.03)
//!
//! FRM.01.03 has no public machine format, so nesca defines this one (`README.md` beside this
//! crate shows a sample).
//!
//! - **Rows.** The first non-empty row is the header (normally row 1); every later row is one
//!   person. Row numbers in the report are the spreadsheet's: the header is row 1, and a blank
//!   line of a csv counts as a row, as a spreadsheet program shows it. A row is *empty*, and
//!   skipped without a word, when every list column but "Sıra No" is blank (templates come
//!   pre-numbered); unknown columns do not make a row non-empty.
//! - **Columns**, in any order, found by their header:
//!
//!   | column | headers accepted | field in the report | |
//!   | --- | --- | --- | --- |
//!   | T.C. Kimlik No | `T.C. Kimlik No`, `TC Kimlik No`, `TCKN` | `tckn` | required |
//!   | Adı | `Adı`, `Ad` | `given_name` | required |
//!   | Soyadı | `Soyadı`, `Soyad` | `surname` | required |
//!   | E-posta | `E-posta`, `E-Posta`, `Eposta` | `email` | required |
//!   | Cep Telefonu | `Cep Telefonu`, `Cep Tel`, `GSM` | `mobile` | required |
//!   | Birim | `Birim` | `unit` | required |
//!   | Sıra No | `Sıra No`, `Sıra` | — (not read) | optional |
//!   | Unvan | `Unvan` | `title` | optional |
//!
//!   Headers match case-insensitively with the Turkish i (`İ`/`i`, `I`/`ı` all match), with
//!   Turkish letters folded to their Latin base and spaces and punctuation ignored: "SOYADI",
//!   "Soyadi", "soyadı" and "T.C. KİMLİK NO" all match. A header that names no column is
//!   reported once as a warning and its column ignored; values in a column with no header
//!   are a warning too. A missing required column refuses the file
//!   ([`ListError::MissingColumns`]: `header: the column "T.C. Kimlik No" is missing`), and so
//!   does a column named twice ([`ListError::DuplicateColumn`]).
//! - **xlsx**: the first worksheet (other worksheets are a warning). Cells may be text or
//!   numbers: a number is read as typed, without exponent or ".0", so a T.C. Kimlik No typed
//!   as a number reads as its 11 digits; a mobile number typed as a number has lost its
//!   leading 0 (`5321234567`), which is accepted. Boolean and error cells read as Excel shows
//!   them (`TRUE`, `#N/A`) and so fail their checks.
//! - **csv**: UTF-8, with or without a byte order mark (other encodings are refused with
//!   [`ListError::CsvNotUtf8`]); fields separated by `,` or `;`, whichever the header line
//!   holds more of outside quotes; quoting per RFC 4180.
//! - Every cell is trimmed of surrounding whitespace (no-break spaces included).
//!
//! # Checks of a row
//!
//! Each problem is one [`RowProblem`] (row, field, reason); a row with any problem is invalid
//! and all of its problems are reported, in column order.
//!
//! | field | check | reasons (examples) |
//! | --- | --- | --- |
//! | `tckn` | [`nesca_identity::Tckn`]: 11 digits, not starting with 0, both checksum digits | `must not be empty`, `must be exactly 11 digits (got 10 characters)`, `checksum digit 10 is wrong (not a valid T.C. Kimlik No)` |
//! | `tckn` | not twice in the file: the second and later rows with a (valid) number already seen are invalid | `the same T.C. Kimlik No as row 3` |
//! | `given_name`, `surname` | [`nesca_identity::PersonName`]: 1–64 letters (Turkish ones kept exactly), inner spaces, `-`, `'`, `.` | `must not be empty`, `character '1' is not allowed (…)` |
//! | `email` | [`nesca_identity::Email`] | `must contain an '@'`, `domain "x" must be a name with a dot, …` |
//! | `mobile` | [`nesca_identity::TrMobile`]: a Turkish mobile (5xx), stored as `+905321234567` | `must be a mobile number: …`, `must be written as 05321234567, … (got 9 digits)` |
//! | `unit` | required, 1–128 characters, no control characters | `must not be empty`, `must be at most 128 characters (got 130)`, `control character '\n' is not allowed` |
//! | `title` | optional; at most 128 characters, no control characters | as `unit` |
//!
//! # The report
//!
//! [`ListReport`] serializes to JSON with stable field names ([`ListReport::to_json`]);
//! [`report_csv`] gives its problems as a csv to download (`row,field,reason`). The file's
//! identity for an idempotent import is [`ListReport::file_sha256`]; a row's is
//! [`ValidRow::identity`], its T.C. Kimlik No.
//!
//! # Limits
//!
//! Reading never panics, whatever the bytes; a file is refused as a whole with a
//! [`ListError`] when:
//! - it is larger than [`MAX_FILE_BYTES`] (64 MiB), holds more than [`MAX_ROWS`]
//!   (200,000) non-empty rows after the header, or a cell beyond column XFD
//!   ([`MAX_COLUMNS`], 16,384; a csv record with more fields);
//! - an xlsx is not a plain zip archive (ZIP64, multi-disk, data before the archive, a part
//!   twice, encrypted, compression other than deflate), has more than [`MAX_PARTS`] parts, a
//!   worksheet part over [`MAX_WORKSHEET_BYTES`] decompressed, a shared strings part over
//!   [`MAX_SHARED_STRINGS_BYTES`] or announcing more than [`MAX_UNIQUE_STRINGS`] strings,
//!   another XML part over [`MAX_OTHER_XML_BYTES`], or more than [`MAX_CELLS`] cells in its
//!   worksheet. These bound what calamine allocates: it holds the shared strings and styles
//!   in memory and reserves room for as many strings as the file announces. The worksheet
//!   itself is streamed: only one row is held at a time, and of the rows only the valid ones
//!   are kept.
#![forbid(unsafe_code)]

mod check;
mod csv_read;
mod error;
mod header;
mod inflate;
mod report;
mod xlsx;
mod zipguard;

use serde::Serialize;
use sha2::{Digest, Sha256};

pub use check::{MAX_COLUMNS, MAX_UNIT_CHARS};
pub use error::ListError;
pub use report::{csv_field, report_csv, ListCounts, ListReport, RowProblem, ValidRow};
pub use xlsx::MAX_CELLS;
pub use zipguard::{
    MAX_OTHER_XML_BYTES, MAX_PARTS, MAX_SHARED_STRINGS_BYTES, MAX_UNIQUE_STRINGS,
    MAX_WORKSHEET_BYTES,
};

/// Largest list file read: 64 MiB.
pub const MAX_FILE_BYTES: u64 = 64 << 20;
/// Most non-empty rows after the header.
pub const MAX_ROWS: usize = 200_000;

/// The two formats a list comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ListFormat {
    /// Office Open XML workbook: the first worksheet is read.
    Xlsx,
    /// Comma- or semicolon-separated values, UTF-8.
    Csv,
}

impl ListFormat {
    /// The format a file name says, by its extension (case-insensitive): `.xlsx` or `.csv`.
    pub fn from_file_name(name: &str) -> Result<ListFormat, ListError> {
        let lower = name.trim().to_ascii_lowercase();
        if lower.ends_with(".xlsx") {
            Ok(ListFormat::Xlsx)
        } else if lower.ends_with(".csv") {
            Ok(ListFormat::Csv)
        } else {
            Err(ListError::UnknownFormat {
                name: name.to_string(),
            })
        }
    }

    /// `xlsx` or `csv`.
    pub fn as_str(self) -> &'static str {
        match self {
            ListFormat::Xlsx => "xlsx",
            ListFormat::Csv => "csv",
        }
    }
}

/// Reads a list and checks every row (see the crate documentation for the format, the checks
/// and the limits). A problem in a row is in the report; an `Err` refuses the whole file.
pub fn read_list(bytes: &[u8], format: ListFormat) -> Result<ListReport, ListError> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ListError::FileTooLarge {
            size: bytes.len() as u64,
        });
    }
    let file_sha256 = hex::encode(Sha256::digest(bytes));
    let mut list = check::ListBuilder::new();
    match format {
        ListFormat::Xlsx => xlsx::read(bytes, &mut list)?,
        ListFormat::Csv => csv_read::read(bytes, &mut list)?,
    }
    list.finish(format, file_sha256)
}

#[cfg(test)]
mod tests;
