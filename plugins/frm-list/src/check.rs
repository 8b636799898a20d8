//! The row checks and the report they build. Both readers hand rows of cells to a
//! [`ListBuilder`]: the first non-empty row is the header, every later non-empty row a person.

use std::collections::hash_map::{Entry, HashMap};

use nesca_identity::{Email, IdentityError, PersonName, Tckn, TrMobile};

use crate::header::{column_letters, Column, HeaderMap, SLOTS};
use crate::{ListCounts, ListError, ListFormat, ListReport, RowProblem, ValidRow, MAX_ROWS};

/// Most columns of a list (Excel's limit, column XFD): a cell further right refuses the file.
pub const MAX_COLUMNS: u32 = 16_384;

/// Longest "Birim" and "Unvan", in characters.
pub const MAX_UNIT_CHARS: usize = 128;

/// Accumulates the report row by row.
pub(crate) struct ListBuilder {
    header: Option<HeaderMap>,
    /// First row of each T.C. Kimlik No seen (valid ones), by its 11 digits as a number.
    seen: HashMap<u64, u32>,
    rows: usize,
    invalid_rows: usize,
    valid: Vec<ValidRow>,
    invalid: Vec<RowProblem>,
    warnings: Vec<String>,
    /// Sheet columns without a header already warned about (indexed by column).
    warned_unnamed: Vec<bool>,
}

impl ListBuilder {
    pub(crate) fn new() -> ListBuilder {
        ListBuilder {
            header: None,
            seen: HashMap::new(),
            rows: 0,
            invalid_rows: 0,
            valid: Vec::new(),
            invalid: Vec::new(),
            warnings: Vec::new(),
            warned_unnamed: Vec::new(),
        }
    }

    /// A warning from a reader (other worksheets, a hidden sheet).
    pub(crate) fn warn(&mut self, warning: String) {
        self.warnings.push(warning);
    }

    /// One row: its spreadsheet row number and its cells as (0-based column below
    /// [`MAX_COLUMNS`], text). Texts are trimmed here; empty cells may be left out.
    pub(crate) fn push_row(&mut self, row: u32, cells: &[(u32, String)]) -> Result<(), ListError> {
        let Some(header) = &self.header else {
            let named: Vec<(u32, String)> = cells
                .iter()
                .map(|(i, t)| (*i, t.trim().to_string()))
                .filter(|(_, t)| !t.is_empty())
                .collect();
            if !named.is_empty() {
                self.header = Some(HeaderMap::read(&named, &mut self.warnings)?);
            }
            return Ok(());
        };
        let mut slots: [&str; SLOTS] = [""; SLOTS];
        let mut unnamed_with_values = Vec::new();
        for (index, text) in cells {
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            match header.column_at(*index) {
                Some(column) => slots[column.slot()] = text,
                None if header.is_unnamed(*index) => unnamed_with_values.push(*index),
                None => {}
            }
        }
        for index in unnamed_with_values {
            let i = index as usize;
            if self.warned_unnamed.len() <= i {
                self.warned_unnamed.resize(i + 1, false);
            }
            if !self.warned_unnamed[i] {
                self.warned_unnamed[i] = true;
                self.warnings.push(format!(
                    "header: column {} has values but no header (first in row {row}); they are \
                     ignored",
                    column_letters(index)
                ));
            }
        }
        // Empty: nothing in any column but "Sıra No" (templates come pre-numbered).
        if slots
            .iter()
            .enumerate()
            .all(|(i, t)| i == Column::SeqNo.slot() || t.is_empty())
        {
            return Ok(());
        }
        self.rows += 1;
        if self.rows > MAX_ROWS {
            return Err(ListError::TooManyRows);
        }
        self.check_row(row, &slots);
        Ok(())
    }

    fn check_row(&mut self, row: u32, slots: &[&str; SLOTS]) {
        let text = |c: Column| slots[c.slot()];
        let mut problems = Problems {
            row,
            list: Vec::new(),
        };

        let tckn = if text(Column::Tckn).is_empty() {
            problems.add(Column::Tckn.field(), "must not be empty".into());
            None
        } else {
            match Tckn::parse(text(Column::Tckn)) {
                Ok(tckn) => {
                    match self.seen.entry(tckn_key(&tckn)) {
                        Entry::Occupied(first) => problems.add(
                            Column::Tckn.field(),
                            format!("the same T.C. Kimlik No as row {}", first.get()),
                        ),
                        Entry::Vacant(v) => {
                            v.insert(row);
                        }
                    }
                    Some(tckn)
                }
                Err(e) => {
                    problems.add(Column::Tckn.field(), e.to_string());
                    None
                }
            }
        };
        let given_name = problems.take(PersonName::parse(
            Column::GivenName.field(),
            text(Column::GivenName),
        ));
        let surname = problems.take(PersonName::parse(
            Column::Surname.field(),
            text(Column::Surname),
        ));
        let email = problems.take(Email::parse(Column::Email.field(), text(Column::Email)));
        let mobile = problems.take(TrMobile::parse(
            Column::Mobile.field(),
            text(Column::Mobile),
        ));
        let unit = match check_text(text(Column::Unit), true) {
            Ok(u) => Some(u.to_string()),
            Err(reason) => {
                problems.add(Column::Unit.field(), reason);
                None
            }
        };
        let title = match check_text(text(Column::Title), false) {
            Ok("") => Some(None),
            Ok(t) => Some(Some(t.to_string())),
            Err(reason) => {
                problems.add(Column::Title.field(), reason);
                None
            }
        };

        if !problems.list.is_empty() {
            self.invalid_rows += 1;
            self.invalid.append(&mut problems.list);
            return;
        }
        if let (
            Some(tckn),
            Some(given_name),
            Some(surname),
            Some(email),
            Some(mobile),
            Some(unit),
            Some(title),
        ) = (tckn, given_name, surname, email, mobile, unit, title)
        {
            self.valid.push(ValidRow {
                row,
                tckn,
                given_name,
                surname,
                email,
                mobile,
                unit,
                title,
            });
        }
    }

    /// The report, or [`ListError::Empty`] when no header was found.
    pub(crate) fn finish(
        mut self,
        format: ListFormat,
        file_sha256: String,
    ) -> Result<ListReport, ListError> {
        if self.header.is_none() {
            return Err(ListError::Empty);
        }
        if self.rows == 0 {
            self.warnings
                .push("list: no rows after the header".to_string());
        }
        Ok(ListReport {
            format,
            file_sha256,
            counts: ListCounts {
                rows: self.rows,
                valid: self.valid.len(),
                invalid: self.invalid_rows,
                problems: self.invalid.len(),
            },
            valid: self.valid,
            invalid: self.invalid,
            warnings: self.warnings,
        })
    }
}

/// The problems of one row, in column order.
struct Problems {
    row: u32,
    list: Vec<RowProblem>,
}

impl Problems {
    fn add(&mut self, field: &'static str, reason: String) {
        self.list.push(RowProblem {
            row: self.row,
            field,
            reason,
        });
    }

    /// The value, or its refusal recorded under the field it names.
    fn take<T>(&mut self, checked: Result<T, IdentityError>) -> Option<T> {
        match checked {
            Ok(v) => Some(v),
            Err(e) => {
                self.add(e.field(), e.rule().to_string());
                None
            }
        }
    }
}

/// The 11 digits as one number: a smaller map key than the string.
fn tckn_key(tckn: &Tckn) -> u64 {
    tckn.as_str()
        .bytes()
        .fold(0u64, |n, b| n * 10 + u64::from(b - b'0'))
}

/// "Birim" (required) and "Unvan" (optional): at most [`MAX_UNIT_CHARS`] characters, no
/// control characters. The text is already trimmed.
fn check_text(text: &str, required: bool) -> Result<&str, String> {
    if text.is_empty() {
        return if required {
            Err("must not be empty".into())
        } else {
            Ok("")
        };
    }
    let n = text.chars().count();
    if n > MAX_UNIT_CHARS {
        return Err(format!(
            "must be at most {MAX_UNIT_CHARS} characters (got {n})"
        ));
    }
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(format!("control character {c:?} is not allowed"));
    }
    Ok(text)
}
