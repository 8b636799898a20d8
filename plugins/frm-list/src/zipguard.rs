//! Checks on an xlsx's zip structure before calamine opens it, so that a small hostile file
//! cannot make the reader allocate without bound.
//!
//! calamine loads a workbook's shared strings, styles and relations into memory, and reserves
//! room for as many shared strings as the part's `uniqueCount` attribute announces: a 2 KiB
//! file announcing ten billion strings aborts the process (an allocation failure is not a
//! panic that can be caught). Its zip reader bounds every part to the size the central
//! directory declares. So this module reads the central directory as the zip reader does,
//! refuses the unusual shapes where the two could read it differently, bounds the declared
//! sizes of the parts calamine reads, and decodes the first 16 KiB of the shared strings part
//! to bound `uniqueCount`.

use crate::inflate::inflate_prefix;
use crate::ListError;

/// Most parts (zip entries) in a workbook.
pub const MAX_PARTS: usize = 1000;
/// Largest shared strings part (decompressed); calamine holds it all in memory.
pub const MAX_SHARED_STRINGS_BYTES: u64 = 128 << 20;
/// Largest `uniqueCount` of the shared strings (what calamine reserves room for).
pub const MAX_UNIQUE_STRINGS: u64 = 10_000_000;
/// Largest worksheet part (decompressed); calamine streams it.
pub const MAX_WORKSHEET_BYTES: u64 = 1 << 30;
/// Largest other XML part (styles, workbook, relations, theme…); calamine holds them.
pub const MAX_OTHER_XML_BYTES: u64 = 8 << 20;
/// How much of the shared strings part is decoded to find its `<sst>` start tag.
const PREFIX: usize = 16 << 10;

const LOCAL: &[u8; 4] = b"PK\x03\x04";
const CENTRAL: &[u8; 4] = b"PK\x01\x02";
const END: &[u8; 4] = b"PK\x05\x06";
const CFB: &[u8; 8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1";

fn refuse(reason: impl Into<String>) -> ListError {
    ListError::Xlsx {
        reason: reason.into(),
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Refuses a file whose structure or declared sizes calamine should not be given.
pub(crate) fn check(bytes: &[u8]) -> Result<(), ListError> {
    if bytes.starts_with(CFB) {
        return Err(refuse(
            "this is an Excel 97-2003 (.xls) or password-protected workbook; save it as .xlsx \
             without a password",
        ));
    }
    if !bytes.starts_with(LOCAL) {
        return Err(refuse("not a zip archive (an .xlsx file is one)"));
    }
    let truncated = || refuse("the zip archive is truncated or damaged");
    // End of central directory: the last signature in the final 22 + 65535 bytes.
    let tail_start = bytes.len().saturating_sub(22 + 0xffff);
    let eocd = (tail_start..bytes.len().saturating_sub(21))
        .rev()
        .find(|&i| bytes[i..].starts_with(END))
        .ok_or_else(truncated)?;
    let field16 = |at: usize| u16_at(bytes, eocd + at).ok_or_else(truncated);
    let field32 = |at: usize| u32_at(bytes, eocd + at).ok_or_else(truncated);
    let (disk, cd_disk, here, entries) = (field16(4)?, field16(6)?, field16(8)?, field16(10)?);
    let (cd_size, cd_offset, comment) = (field32(12)?, field32(16)?, field16(20)?);
    if eocd + 22 + usize::from(comment) > bytes.len() {
        return Err(truncated());
    }
    if entries == u16::MAX || cd_size == u32::MAX || cd_offset == u32::MAX {
        return Err(refuse("ZIP64 archives are not read"));
    }
    if disk != 0 || cd_disk != 0 || here != entries {
        return Err(refuse("multi-disk zip archives are not read"));
    }
    let (cd_offset, cd_size) = (cd_offset as usize, cd_size as usize);
    // Strict: the central directory ends where its end record begins (no data before the
    // archive, nothing between), as every spreadsheet program writes it.
    if cd_offset.checked_add(cd_size) != Some(eocd) {
        return Err(refuse(
            "the zip central directory is not where its end record says",
        ));
    }
    if usize::from(entries) > MAX_PARTS {
        return Err(refuse(format!(
            "more than {MAX_PARTS} parts in the zip archive"
        )));
    }
    let mut names: Vec<String> = Vec::with_capacity(usize::from(entries));
    let mut at = cd_offset;
    for _ in 0..entries {
        let entry = Entry::read(bytes, at, eocd)?;
        at = entry.next;
        if names.contains(&entry.name) {
            return Err(refuse(format!(
                "the zip archive holds the part {:?} twice",
                entry.name
            )));
        }
        entry.check_size()?;
        if entry.name.ends_with("sharedstrings.xml") {
            check_shared_strings(bytes, &entry)?;
        }
        names.push(entry.name);
    }
    Ok(())
}

/// One central directory entry, as far as the checks need it.
struct Entry {
    /// Lower-case, `\` as `/`: how calamine looks parts up.
    name: String,
    flags: u16,
    method: u16,
    compressed: u32,
    uncompressed: u64,
    local_offset: usize,
    /// Offset of the next central directory entry.
    next: usize,
}

impl Entry {
    fn read(bytes: &[u8], at: usize, end: usize) -> Result<Entry, ListError> {
        let bad = || refuse("the zip central directory is damaged");
        let head = bytes
            .get(at..at + 46)
            .filter(|_| at + 46 <= end)
            .ok_or_else(bad)?;
        if !head.starts_with(CENTRAL) {
            return Err(bad());
        }
        let h16 = |o: usize| u16_at(head, o).ok_or_else(bad);
        let h32 = |o: usize| u32_at(head, o).ok_or_else(bad);
        let (flags, method) = (h16(8)?, h16(10)?);
        let (compressed, uncompressed) = (h32(20)?, h32(24)?);
        let (name_len, extra_len, comment_len) = (
            usize::from(h16(28)?),
            usize::from(h16(30)?),
            usize::from(h16(32)?),
        );
        let local_offset = h32(42)?;
        let name_start = at + 46;
        let extra_start = name_start + name_len;
        let next = extra_start + extra_len + comment_len;
        if next > end {
            return Err(bad());
        }
        let raw_name = &bytes[name_start..extra_start];
        let name = String::from_utf8_lossy(raw_name)
            .replace('\\', "/")
            .to_ascii_lowercase();
        if compressed == u32::MAX || uncompressed == u32::MAX || local_offset == u32::MAX {
            return Err(refuse(format!("the part {name:?} is a ZIP64 entry")));
        }
        // Extra fields that change an entry's sizes (ZIP64, 0x0001) or name (Info-ZIP
        // Unicode Path, 0x7075) would make the zip reader see another entry than this one.
        let mut extra = &bytes[extra_start..extra_start + extra_len];
        while extra.len() >= 4 {
            let id = u16_at(extra, 0).ok_or_else(bad)?;
            let len = usize::from(u16_at(extra, 2).ok_or_else(bad)?);
            if id == 0x0001 || id == 0x7075 {
                return Err(refuse(format!(
                    "the part {name:?} has a ZIP64 or Unicode path extra field"
                )));
            }
            extra = extra.get(4 + len..).ok_or_else(bad)?;
        }
        Ok(Entry {
            name,
            flags,
            method,
            compressed,
            uncompressed: u64::from(uncompressed),
            local_offset: local_offset as usize,
            next,
        })
    }

    /// The declared size against the limit for the kind of part calamine makes of it.
    fn check_size(&self) -> Result<(), ListError> {
        let n = &self.name;
        let limit = if n.ends_with("sharedstrings.xml") {
            MAX_SHARED_STRINGS_BYTES
        } else if n.contains("worksheets/") {
            MAX_WORKSHEET_BYTES
        } else if n.ends_with(".xml") || n.ends_with(".rels") {
            MAX_OTHER_XML_BYTES
        } else {
            // Images and other parts calamine does not read.
            return Ok(());
        };
        if self.uncompressed > limit {
            return Err(refuse(format!(
                "the part {n:?} expands to {} bytes, over the limit of {limit}",
                self.uncompressed
            )));
        }
        Ok(())
    }

    /// The first bytes of the part, decompressed.
    fn prefix(&self, bytes: &[u8]) -> Result<Vec<u8>, ListError> {
        let bad = || refuse(format!("the part {:?} is damaged", self.name));
        if self.flags & 1 != 0 {
            return Err(refuse(format!("the part {:?} is encrypted", self.name)));
        }
        let head = bytes
            .get(self.local_offset..self.local_offset + 30)
            .ok_or_else(bad)?;
        if !head.starts_with(LOCAL) {
            return Err(bad());
        }
        let name_len = usize::from(u16_at(head, 26).ok_or_else(bad)?);
        let extra_len = usize::from(u16_at(head, 28).ok_or_else(bad)?);
        let start = self.local_offset + 30 + name_len + extra_len;
        let end = start
            .saturating_add(self.compressed as usize)
            .min(bytes.len());
        let data = bytes.get(start..end).ok_or_else(bad)?;
        match self.method {
            0 => Ok(data[..data.len().min(PREFIX)].to_vec()),
            8 => inflate_prefix(data, PREFIX).map_err(|_| bad()),
            m => Err(refuse(format!(
                "the part {:?} uses zip compression method {m}, not stored or deflate",
                self.name
            ))),
        }
    }
}

/// The shared strings part must begin (after an XML declaration, processing instructions
/// and comments) with its `<sst>` start tag, whose `uniqueCount` is bounded.
fn check_shared_strings(bytes: &[u8], entry: &Entry) -> Result<(), ListError> {
    let prefix = entry.prefix(bytes)?;
    check_sst_start(&prefix).map_err(|why| refuse(format!("the shared strings part {why}")))
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn check_sst_start(xml: &[u8]) -> Result<(), String> {
    let not_first = || "does not begin with its <sst> element".to_string();
    let mut i = if xml.starts_with(b"\xef\xbb\xbf") {
        3
    } else {
        0
    };
    loop {
        i = find(xml, b"<", i).ok_or_else(not_first)?;
        let rest = &xml[i..];
        if rest.starts_with(b"<?") {
            i = find(xml, b"?>", i + 2).ok_or_else(not_first)? + 2;
        } else if rest.starts_with(b"<!--") {
            i = find(xml, b"-->", i + 4).ok_or_else(not_first)? + 3;
        } else {
            break;
        }
    }
    // A start tag: its name, then attributes up to the '>' outside quotes.
    let name_end = xml[i + 1..]
        .iter()
        .position(|b| b.is_ascii_whitespace() || *b == b'>' || *b == b'/')
        .map(|p| p + i + 1)
        .ok_or_else(not_first)?;
    let name = &xml[i + 1..name_end];
    let local = name.rsplit(|b| *b == b':').next().unwrap_or(name);
    if local != b"sst" {
        return Err(not_first());
    }
    let mut quote = None;
    let mut end = None;
    for (j, &b) in xml.iter().enumerate().skip(name_end) {
        match (quote, b) {
            (None, b'"' | b'\'') => quote = Some(b),
            (Some(q), _) if b == q => quote = None,
            (None, b'>') => {
                end = Some(j);
                break;
            }
            _ => {}
        }
    }
    let end = end.ok_or("has an <sst> start tag longer than 16 KiB")?;
    let tag = xml[name_end..end].to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = find(&tag, b"uniquecount", from) {
        from = at + 1;
        let mut rest = tag[at + b"uniquecount".len()..].trim_ascii_start();
        let Some(r) = rest.strip_prefix(b"=") else {
            continue;
        };
        rest = r.trim_ascii_start();
        let Some((&q, value)) = rest.split_first() else {
            continue;
        };
        let value = match value.iter().position(|&b| b == q) {
            Some(close) if q == b'"' || q == b'\'' => &value[..close],
            _ => continue,
        };
        let digits: Vec<u8> = value
            .iter()
            .copied()
            .filter(u8::is_ascii_digit)
            .skip_while(|&d| d == b'0')
            .collect();
        let count = if digits.len() > 12 {
            u64::MAX
        } else {
            digits
                .iter()
                .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'))
        };
        if count > MAX_UNIQUE_STRINGS {
            return Err(format!(
                "announces {} unique strings, over the limit of {MAX_UNIQUE_STRINGS}",
                String::from_utf8_lossy(value)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sst_start_tag_is_found_and_bounded() {
        let ok: &[&[u8]] = &[
            b"<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\r\n<sst xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" count=\"12\" uniqueCount=\"10\"><si>",
            b"\xef\xbb\xbf<!-- c --><x:sst uniqueCount='10000000'>",
            b"<sst>",
            b"<sst uniqueCount=\"&#49;\">",
            b"<sst a=\">\" uniqueCount=\"5\">",
        ];
        for xml in ok {
            assert_eq!(
                check_sst_start(xml),
                Ok(()),
                "{}",
                String::from_utf8_lossy(xml)
            );
        }
        let refused: &[(&[u8], &str)] = &[
            (
                b"<sst uniqueCount=\"10000001\">",
                "announces 10000001 unique strings",
            ),
            (
                b"<sst count=\"1\" uniqueCount = '99999999999999999999999'>",
                "announces",
            ),
            (b"<sst uniqueCount=\"+0010000001\">", "announces"),
            (b"<sst a='>' UNIQUECOUNT=\"20000000\">", "announces"),
            (b"<other/><sst uniqueCount=\"5\">", "does not begin"),
            (b"<!DOCTYPE x><sst>", "does not begin"),
            (b"<!-- unterminated <sst>", "does not begin"),
            (b"", "does not begin"),
            (b"<sst uniqueCount=\"5\"", "longer than 16 KiB"),
            (b"<\x00s\x00s\x00t\x00>", "does not begin"),
        ];
        for (xml, want) in refused {
            let e = check_sst_start(xml).unwrap_err();
            assert!(e.contains(want), "{}: {e}", String::from_utf8_lossy(xml));
        }
    }
}
