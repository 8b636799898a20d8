//! The header row: which cell is which column.
//!
//! Header texts are compared after [`fold`]: case-insensitively with the Turkish dotted and
//! dotless i (`İ`, `I`, `ı`, `i` are one letter), Turkish letters folded to their Latin base
//! (`ş`→`s`, `ğ`→`g`, `ü`→`u`, `ö`→`o`, `ç`→`c`, `â`→`a`, `î`→`i`, `û`→`u`), and everything
//! that is not a letter or a digit dropped (spaces, `.`, `-`, `_`, combining marks). So
//! "T.C. Kimlik No", "TC KİMLİK NO" and "tc kimlik no" are one header, and so are "SOYADI",
//! "Soyadı" and "Soyadi".

use crate::ListError;

/// A column of FRM.01.03.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Column {
    Tckn,
    GivenName,
    Surname,
    Email,
    Mobile,
    Unit,
    SeqNo,
    Title,
}

/// Every column, in the list's (and the error messages') order.
pub(crate) const COLUMNS: [Column; 8] = [
    Column::SeqNo,
    Column::Tckn,
    Column::GivenName,
    Column::Surname,
    Column::Email,
    Column::Mobile,
    Column::Unit,
    Column::Title,
];

impl Column {
    /// The header as the template writes it.
    pub(crate) fn canonical(self) -> &'static str {
        match self {
            Column::Tckn => "T.C. Kimlik No",
            Column::GivenName => "Adı",
            Column::Surname => "Soyadı",
            Column::Email => "E-posta",
            Column::Mobile => "Cep Telefonu",
            Column::Unit => "Birim",
            Column::SeqNo => "Sıra No",
            Column::Title => "Unvan",
        }
    }

    /// The name of the field in the report (`RowProblem::field`, the JSON of a valid row).
    pub(crate) fn field(self) -> &'static str {
        match self {
            Column::Tckn => "tckn",
            Column::GivenName => "given_name",
            Column::Surname => "surname",
            Column::Email => "email",
            Column::Mobile => "mobile",
            Column::Unit => "unit",
            Column::SeqNo => "seq_no",
            Column::Title => "title",
        }
    }

    pub(crate) fn required(self) -> bool {
        !matches!(self, Column::SeqNo | Column::Title)
    }

    /// The accepted headers, folded.
    fn aliases(self) -> &'static [&'static str] {
        match self {
            // "T.C. Kimlik No", "TC Kimlik No", "TCKN"
            Column::Tckn => &["tckimlikno", "tckn"],
            // "Adı", "Ad"
            Column::GivenName => &["adi", "ad"],
            // "Soyadı", "Soyad"
            Column::Surname => &["soyadi", "soyad"],
            // "E-posta", "E-Posta", "Eposta"
            Column::Email => &["eposta"],
            // "Cep Telefonu", "Cep Tel", "GSM"
            Column::Mobile => &["ceptelefonu", "ceptel", "gsm"],
            Column::Unit => &["birim"],
            // "Sıra No", "Sıra"
            Column::SeqNo => &["sirano", "sira"],
            Column::Title => &["unvan"],
        }
    }

    /// Index into a row's slots.
    pub(crate) fn slot(self) -> usize {
        self as usize
    }

    /// The column a header text names, if any.
    pub(crate) fn from_header(text: &str) -> Option<Column> {
        let folded = fold(text);
        COLUMNS
            .into_iter()
            .find(|c| c.aliases().contains(&folded.as_str()))
    }
}

/// Number of slots in a row (one per [`Column`]).
pub(crate) const SLOTS: usize = COLUMNS.len();

/// Folds a header text for comparison (see the module documentation).
pub(crate) fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            'I' | 'İ' | 'ı' | 'i' | 'Î' | 'î' => out.push('i'),
            'Ş' | 'ş' => out.push('s'),
            'Ğ' | 'ğ' => out.push('g'),
            'Ü' | 'ü' | 'Û' | 'û' => out.push('u'),
            'Ö' | 'ö' => out.push('o'),
            'Ç' | 'ç' => out.push('c'),
            'Â' | 'â' => out.push('a'),
            c if c.is_alphanumeric() => out.extend(c.to_lowercase()),
            // Spaces, punctuation, combining marks (a decomposed "Ş" is "S" + U+0327).
            _ => {}
        }
    }
    out
}

/// The spreadsheet letters of a 0-based column index: 0 → "A", 26 → "AA".
pub(crate) fn column_letters(index: u32) -> String {
    let mut n = u64::from(index) + 1;
    let mut letters = Vec::new();
    while n > 0 {
        let rem = ((n - 1) % 26) as u8;
        letters.push(char::from(b'A' + rem));
        n = (n - 1) / 26;
    }
    letters.iter().rev().collect()
}

/// Where each column is, from the header row.
#[derive(Debug, Clone)]
pub(crate) struct HeaderMap {
    /// For each sheet column (0-based), the list column it holds, if any.
    by_index: Vec<Option<Column>>,
    /// Sheet columns whose header cell is empty.
    unnamed: Vec<bool>,
}

impl HeaderMap {
    /// Reads the header row, given as (0-based column, trimmed non-empty text) in column order.
    /// Unknown headers become warnings; a missing required column or a column named twice is
    /// an error.
    pub(crate) fn read(
        cells: &[(u32, String)],
        warnings: &mut Vec<String>,
    ) -> Result<HeaderMap, ListError> {
        let width = cells
            .iter()
            .map(|(i, _)| *i as usize + 1)
            .max()
            .unwrap_or(0);
        let mut by_index = vec![None; width];
        let mut unnamed = vec![true; width];
        let mut found: [Option<u32>; SLOTS] = [None; SLOTS];
        for (index, text) in cells {
            unnamed[*index as usize] = false;
            match Column::from_header(text) {
                Some(column) => {
                    if let Some(first) = found[column.slot()] {
                        return Err(ListError::DuplicateColumn {
                            column: column.canonical(),
                            first: column_letters(first),
                            second: column_letters(*index),
                        });
                    }
                    found[column.slot()] = Some(*index);
                    by_index[*index as usize] = Some(column);
                }
                None => warnings.push(format!(
                    "header: the column {text:?} (column {}) is not part of FRM.01.03 and is \
                     ignored",
                    column_letters(*index)
                )),
            }
        }
        let missing: Vec<&'static str> = COLUMNS
            .into_iter()
            .filter(|c| c.required() && found[c.slot()].is_none())
            .map(Column::canonical)
            .collect();
        if !missing.is_empty() {
            return Err(ListError::MissingColumns { columns: missing });
        }
        Ok(HeaderMap { by_index, unnamed })
    }

    /// The list column at a sheet column.
    pub(crate) fn column_at(&self, index: u32) -> Option<Column> {
        self.by_index.get(index as usize).copied().flatten()
    }

    /// Whether a sheet column has no header cell (so its values are worth a warning).
    pub(crate) fn is_unnamed(&self, index: u32) -> bool {
        self.unnamed.get(index as usize).copied().unwrap_or(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_header_is_recognised() {
        let cases = [
            ("T.C. Kimlik No", Column::Tckn),
            ("TC Kimlik No", Column::Tckn),
            ("TCKN", Column::Tckn),
            ("T.C. KİMLİK NO", Column::Tckn),
            ("tc kimlik no", Column::Tckn),
            ("Adı", Column::GivenName),
            ("ADI", Column::GivenName),
            ("Ad", Column::GivenName),
            ("adi", Column::GivenName),
            ("Soyadı", Column::Surname),
            ("SOYADI", Column::Surname),
            ("Soyad", Column::Surname),
            ("E-posta", Column::Email),
            ("E-Posta", Column::Email),
            ("Eposta", Column::Email),
            ("E-POSTA", Column::Email),
            ("Cep Telefonu", Column::Mobile),
            ("CEP TELEFONU", Column::Mobile),
            ("Cep Tel", Column::Mobile),
            ("Cep Tel.", Column::Mobile),
            ("GSM", Column::Mobile),
            ("Birim", Column::Unit),
            ("BİRİM", Column::Unit),
            ("Sıra No", Column::SeqNo),
            ("SIRA NO", Column::SeqNo),
            ("Sıra", Column::SeqNo),
            ("Unvan", Column::Title),
            ("ÜNVAN", Column::Title),
            // Surrounding and no-break spaces, a decomposed Ş (S + U+0327 combining cedilla).
            ("  Birim\u{a0}", Column::Unit),
            ("Cep\u{a0}Telefonu", Column::Mobile),
        ];
        for (text, column) in cases {
            assert_eq!(Column::from_header(text), Some(column), "{text:?}");
        }
        assert_eq!(fold("S\u{327}u\u{308}kru\u{308}"), "sukru");
        for unknown in ["Ad Soyad", "Açıklama", "E-mail", "Telefon", "", "Kimlik"] {
            assert_eq!(Column::from_header(unknown), None, "{unknown:?}");
        }
    }

    #[test]
    fn column_letters_are_the_spreadsheets() {
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(701), "ZZ");
        assert_eq!(column_letters(702), "AAA");
        assert_eq!(column_letters(16383), "XFD");
    }

    fn cells(texts: &[&str]) -> Vec<(u32, String)> {
        texts
            .iter()
            .enumerate()
            .filter(|(_, t)| !t.is_empty())
            .map(|(i, t)| (i as u32, t.to_string()))
            .collect()
    }

    #[test]
    fn any_order_unknown_columns_warn() {
        let mut warnings = Vec::new();
        let map = HeaderMap::read(
            &cells(&[
                "Birim",
                "Açıklama",
                "GSM",
                "",
                "Eposta",
                "Soyad",
                "Ad",
                "TCKN",
            ]),
            &mut warnings,
        )
        .unwrap();
        assert_eq!(map.column_at(0), Some(Column::Unit));
        assert_eq!(map.column_at(1), None);
        assert_eq!(map.column_at(2), Some(Column::Mobile));
        assert_eq!(map.column_at(7), Some(Column::Tckn));
        assert_eq!(map.column_at(99), None);
        assert!(!map.is_unnamed(1));
        assert!(map.is_unnamed(3));
        assert!(map.is_unnamed(99));
        assert_eq!(
            warnings,
            ["header: the column \"Açıklama\" (column B) is not part of FRM.01.03 and is ignored"]
        );
    }

    #[test]
    fn missing_and_duplicate_columns_refuse_the_file() {
        let mut w = Vec::new();
        let e = HeaderMap::read(
            &cells(&["Adı", "Soyadı", "E-posta", "Cep Telefonu", "Birim"]),
            &mut w,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "header: the column \"T.C. Kimlik No\" is missing"
        );
        let e = HeaderMap::read(&cells(&["TCKN", "Ad Soyad", "Birim"]), &mut w).unwrap_err();
        assert_eq!(
            e.to_string(),
            "header: the columns \"Adı\", \"Soyadı\", \"E-posta\", \"Cep Telefonu\" are missing"
        );
        let e = HeaderMap::read(
            &cells(&["TCKN", "Adı", "Soyadı", "E-posta", "GSM", "Birim", "Ad"]),
            &mut w,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "header: the column \"Adı\" appears twice (columns B and G)"
        );
    }
}
