//! Reading a csv list: UTF-8 with or without a byte order mark, `,` or `;` between fields
//! (whichever the header line holds more of, outside quotes), quoting per RFC 4180.

use csv::{ReaderBuilder, StringRecord};

use crate::check::{ListBuilder, MAX_COLUMNS};
use crate::ListError;

pub(crate) fn read(bytes: &[u8], list: &mut ListBuilder) -> Result<(), ListError> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    if let Err(e) = std::str::from_utf8(bytes) {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64
            + 1;
        return Err(ListError::CsvNotUtf8 { line });
    }
    let mut reader = ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter(bytes))
        .from_reader(bytes);
    let mut record = StringRecord::new();
    // Spreadsheet row numbers: a spreadsheet program shows a blank line as an empty row and a
    // quoted line break as part of its cell. The csv reader skips blank lines; a record's
    // position is where the reader started looking for it, just after the previous record's
    // line end, so the blank lines it skipped are counted from there.
    let mut row: u64 = 0;
    let mut cells: Vec<(u32, String)> = Vec::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                return Err(ListError::Csv {
                    line: e.position().map_or(0, |p| p.line()),
                    reason: e.to_string(),
                })
            }
        }
        if record.len() > MAX_COLUMNS as usize {
            return Err(ListError::Csv {
                line: record.position().map_or(0, |p| p.line()),
                reason: format!("more than {MAX_COLUMNS} fields"),
            });
        }
        let start = record.position().map_or(0, |p| p.byte());
        row += 1 + blank_lines(bytes, usize::try_from(start).unwrap_or(usize::MAX));
        let row = u32::try_from(row).unwrap_or(u32::MAX);
        cells.clear();
        cells.extend(
            record
                .iter()
                .enumerate()
                .filter(|(_, f)| !f.trim().is_empty())
                .map(|(i, f)| (u32::try_from(i).unwrap_or(u32::MAX), f.to_string())),
        );
        list.push_row(row, &cells)?;
    }
    Ok(())
}

/// The blank lines starting at `at`: line ends ("\r\n", "\n" or "\r"), the first not
/// counted when it is the "\n" of the previous line's "\r\n".
fn blank_lines(bytes: &[u8], at: usize) -> u64 {
    let mut p = at;
    if p > 0 && bytes.get(p - 1) == Some(&b'\r') && bytes.get(p) == Some(&b'\n') {
        p += 1;
    }
    let mut blank = 0;
    loop {
        match bytes.get(p) {
            Some(b'\r') if bytes.get(p + 1) == Some(&b'\n') => p += 2,
            Some(b'\r' | b'\n') => p += 1,
            _ => return blank,
        }
        blank += 1;
    }
}

/// `;` when the first non-blank line holds more semicolons than commas outside quotes,
/// else `,`.
fn delimiter(bytes: &[u8]) -> u8 {
    let first = bytes
        .split(|&b| b == b'\n')
        .find(|line| !line.trim_ascii().is_empty())
        .unwrap_or_default();
    let (mut commas, mut semicolons, mut quoted) = (0usize, 0usize, false);
    for &b in first {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => commas += 1,
            b';' if !quoted => semicolons += 1,
            _ => {}
        }
    }
    if semicolons > commas {
        b';'
    } else {
        b','
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiter_is_detected_from_the_header_line() {
        assert_eq!(delimiter(b"TCKN;Ad;Soyad\n1,2;3"), b';');
        assert_eq!(delimiter(b"TCKN,Ad,Soyad\n1;2;3;4;5"), b',');
        assert_eq!(delimiter(b"\r\n\nTCKN;\"Ad,Soyad,x\";B\n"), b';');
        assert_eq!(delimiter(b"TCKN"), b',');
        assert_eq!(delimiter(b""), b',');
    }
}
