//! The per-row report: [`ListReport`] (JSON through serde) and [`report_csv`].

use std::fmt::{Display, Write as _};

use nesca_identity::{Email, PersonName, Tckn, TrMobile};
use serde::{Serialize, Serializer};

use crate::ListFormat;

/// The outcome of reading one list: every non-empty row is either in `valid` or has one or
/// more entries in `invalid`.
///
/// JSON (field names are stable):
///
/// ```json
/// {"format":"xlsx","file_sha256":"…",
///  "counts":{"rows":3,"valid":1,"invalid":2,"problems":2},
///  "valid":[{"row":2,"tckn":"10000000146","given_name":"Çağrı","surname":"Öztürk",
///            "email":"cagri@example.gov.tr","mobile":"+905321234567","unit":"Bilgi İşlem",
///            "title":null}],
///  "invalid":[{"row":3,"field":"tckn","reason":"checksum digit 10 is wrong (not a valid T.C. Kimlik No)"},
///             {"row":4,"field":"mobile","reason":"…"}],
///  "warnings":[]}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListReport {
    /// The format the file was read as.
    pub format: ListFormat,
    /// SHA-256 of the file's bytes, lower-case hex: the file's identity for an idempotent
    /// import.
    pub file_sha256: String,
    /// How many rows of each kind.
    pub counts: ListCounts,
    /// The rows that passed every check, in row order.
    pub valid: Vec<ValidRow>,
    /// One entry per field problem, in row order and, within a row, in column order
    /// (tckn, given_name, surname, email, mobile, unit, title).
    pub invalid: Vec<RowProblem>,
    /// What was read but ignored (unknown columns, other worksheets…), each once.
    pub warnings: Vec<String>,
}

/// The counts of a [`ListReport`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ListCounts {
    /// Non-empty rows after the header (empty rows are skipped and not counted).
    pub rows: usize,
    /// Rows without any problem (`valid.len()`).
    pub valid: usize,
    /// Rows with at least one problem.
    pub invalid: usize,
    /// Entries in `invalid` (a row can have several).
    pub problems: usize,
}

/// A row that passed every check: the values as typed identity values, trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidRow {
    /// The spreadsheet's row number (the header is row 1).
    pub row: u32,
    #[serde(serialize_with = "as_text")]
    pub tckn: Tckn,
    #[serde(serialize_with = "as_text")]
    pub given_name: PersonName,
    #[serde(serialize_with = "as_text")]
    pub surname: PersonName,
    /// As given, its domain in lower case.
    #[serde(serialize_with = "as_text")]
    pub email: Email,
    /// E.164, `+905321234567`.
    #[serde(serialize_with = "as_text")]
    pub mobile: TrMobile,
    /// "Birim": 1 to 128 characters.
    pub unit: String,
    /// "Unvan", when the column is there and the cell is not empty.
    pub title: Option<String>,
}

impl ValidRow {
    /// The row's identity for an idempotent import: the T.C. Kimlik No (unique within a
    /// list). The host decides what it is unique in beyond the list (per institution).
    pub fn identity(&self) -> &Tckn {
        &self.tckn
    }
}

/// One problem of one field of one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowProblem {
    /// The spreadsheet's row number (the header is row 1).
    pub row: u32,
    /// `tckn`, `given_name`, `surname`, `email`, `mobile`, `unit` or `title`.
    pub field: &'static str,
    /// What is wrong, for a person: "must not be empty", "the same T.C. Kimlik No as row 3"…
    pub reason: String,
}

fn as_text<T: Display, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

impl ListReport {
    /// The report as JSON (see [`ListReport`]).
    pub fn to_json(&self) -> String {
        // Serializing these types cannot fail: plain structs, strings and numbers.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The problems of a report as csv, to download: the header `row,field,reason`, then one line
/// per entry of `invalid`, CRLF line ends, UTF-8 without a byte order mark, fields quoted per
/// RFC 4180 when they hold `,`, `"`, CR or LF (a `"` doubled). A field that begins with `=`,
/// `+`, `-`, `@`, a tab or CR is prefixed with `'` so that a spreadsheet program shows it as
/// text instead of running it as a formula (reasons can quote what the list held).
pub fn report_csv(report: &ListReport) -> String {
    let mut out = String::from("row,field,reason\r\n");
    for p in &report.invalid {
        // Writing into a String cannot fail.
        let _ = write!(
            out,
            "{},{},{}\r\n",
            p.row,
            csv_field(p.field),
            csv_field(&p.reason)
        );
    }
    out
}

/// One csv field (RFC 4180): quoted when it must be, and a leading `= + - @` (a spreadsheet
/// formula) neutralised with a `'`.
pub fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(invalid: Vec<RowProblem>) -> ListReport {
        ListReport {
            format: ListFormat::Csv,
            file_sha256: String::new(),
            counts: ListCounts::default(),
            valid: Vec::new(),
            invalid,
            warnings: Vec::new(),
        }
    }

    fn problem(row: u32, field: &'static str, reason: &str) -> RowProblem {
        RowProblem {
            row,
            field,
            reason: reason.to_string(),
        }
    }

    #[test]
    fn csv_quotes_per_rfc_4180() {
        let r = report(vec![
            problem(2, "tckn", "must not be empty"),
            problem(3, "email", "domain \"a,b\" must be a name with a dot"),
            problem(4, "unit", "line one\nline two"),
            problem(5, "surname", "character 'ş' is fine, \"quoted\""),
            problem(6, "title", "=HYPERLINK(\"x\")"),
            problem(7, "title", "-1"),
            problem(8, "unit", "İpek Çağrı Şükrü"),
        ]);
        assert_eq!(
            report_csv(&r),
            "row,field,reason\r\n\
             2,tckn,must not be empty\r\n\
             3,email,\"domain \"\"a,b\"\" must be a name with a dot\"\r\n\
             4,unit,\"line one\nline two\"\r\n\
             5,surname,\"character 'ş' is fine, \"\"quoted\"\"\"\r\n\
             6,title,\"'=HYPERLINK(\"\"x\"\")\"\r\n\
             7,title,'-1\r\n\
             8,unit,İpek Çağrı Şükrü\r\n"
        );
        assert_eq!(report_csv(&report(Vec::new())), "row,field,reason\r\n");
    }

    #[test]
    fn csv_of_the_report_parses_back_with_the_csv_crate() {
        let r = report(vec![
            problem(3, "email", "a \"b\", c\r\nd"),
            problem(9, "unit", "Ünite"),
        ]);
        let text = report_csv(&r);
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let rows: Vec<Vec<String>> = reader
            .records()
            .map(|r| r.unwrap().iter().map(str::to_string).collect())
            .collect();
        assert_eq!(
            rows,
            vec![
                vec!["3", "email", "a \"b\", c\r\nd"],
                vec!["9", "unit", "Ünite"]
            ]
        );
    }
}
