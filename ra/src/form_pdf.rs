//! The application form as a PDF 1.4 document (ISO 32000-1), for an applicant who prints it,
//! signs it on paper and sends the scan. Text only, in the standard Helvetica fonts (nothing
//! embedded): Turkish letters print through a font encoding whose `/Differences` map unused
//! WinAnsi codes to the glyphs ğ Ğ ı İ ş Ş, which every PDF reader's Helvetica has.

/// A4 in points.
const PAGE_WIDTH: u32 = 595;
const PAGE_HEIGHT: u32 = 842;
const MARGIN: u32 = 50;
const LEADING: u32 = 14;
/// The text width in 1/1000 of the font size: 495 pt of Helvetica at 10 pt.
const LINE_UNITS: u32 = (PAGE_WIDTH - 2 * MARGIN) * 100;

/// The WinAnsi codes given to the Turkish letters WinAnsi lacks (ISO 32000-1 §9.6.6.1, D.2:
/// 0x7F, 0x81, 0x8D, 0x8F, 0x90 and 0x9D are unused in WinAnsiEncoding).
const TURKISH: [(char, u8, &str); 6] = [
    ('Ğ', 0x81, "Gbreve"),
    ('ğ', 0x8D, "gbreve"),
    ('İ', 0x8F, "Idotaccent"),
    ('ı', 0x90, "dotlessi"),
    ('Ş', 0x9D, "Scedilla"),
    ('ş', 0x7F, "scedilla"),
];

/// The characters WinAnsi places in 0x80–0x9F (the typographic ones a Turkish text uses).
const WIN_ANSI_HIGH: [(char, u8); 14] = [
    ('€', 0x80),
    ('‚', 0x82),
    ('„', 0x84),
    ('…', 0x85),
    ('‘', 0x91),
    ('’', 0x92),
    ('“', 0x93),
    ('”', 0x94),
    ('•', 0x95),
    ('–', 0x96),
    ('—', 0x97),
    ('™', 0x99),
    ('‹', 0x8B),
    ('›', 0x9B),
];

/// One character as a byte of the font's encoding; `?` when it has none.
fn encode_char(c: char) -> u8 {
    if let Some((_, code, _)) = TURKISH.iter().find(|(t, _, _)| *t == c) {
        return *code;
    }
    if let Some((_, code)) = WIN_ANSI_HIGH.iter().find(|(t, _)| *t == c) {
        return *code;
    }
    match c as u32 {
        // Printable ASCII and Latin-1 (Ç ç Ö ö Ü ü, ° § « » ½, …), but the soft hyphen.
        0x20..=0x7E | 0xA0..=0xAC | 0xAE..=0xFF => c as u32 as u8,
        _ => b'?',
    }
}

/// Helvetica's advance widths (its AFM, 1/1000 em) of the ASCII printable characters.
const HELVETICA_ASCII: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667,
    611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667,
    667, 611, 278, 278, 278, 469, 556, 333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500,
    222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
];

/// A character's width in Helvetica (1/1000 em); outside ASCII, that of its base letter or,
/// for the rest, the widest common letter's (so a line never runs past the margin).
fn width(c: char) -> u32 {
    let base = crate::turkish::base_letter(c);
    match base as u32 {
        0x20..=0x7E => u32::from(HELVETICA_ASCII[(base as u32 - 0x20) as usize]),
        _ => 1000,
    }
}

/// The text as it prints: combining dots dropped (a lower-cased "İ" is "i" + U+0307, and the
/// font has no combining marks: the "i" has its dot already).
fn printable(text: &str) -> String {
    text.chars().filter(|c| *c != '\u{0307}').collect()
}

/// A PDF literal string of `text`, encoded and escaped.
fn literal(text: &str) -> Vec<u8> {
    let mut out = vec![b'('];
    for c in text.chars() {
        let b = encode_char(c);
        if matches!(b, b'(' | b')' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b')');
    out
}

/// Splits `line` into pieces no wider than the text area, at spaces where it can.
fn wrap(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest: Vec<char> = printable(line).chars().collect();
    loop {
        // How many characters fit.
        let mut used = 0;
        let fit = rest
            .iter()
            .position(|c| {
                used += width(*c);
                used > LINE_UNITS
            })
            .unwrap_or(rest.len());
        if fit == rest.len() {
            break;
        }
        let cut = rest[..=fit]
            .iter()
            .rposition(|c| *c == ' ')
            .filter(|i| *i > 0)
            .unwrap_or(fit.max(1));
        out.push(rest[..cut].iter().collect());
        let skip = usize::from(rest.get(cut) == Some(&' '));
        rest.drain(..cut + skip);
    }
    out.push(rest.into_iter().collect());
    out
}

/// The form: `title` in bold, then `lines` (an empty string is a blank line), on as many A4
/// pages as they need.
pub fn form_pdf(title: &str, lines: &[String]) -> Vec<u8> {
    // Title (one line down), a blank line, then text down to the bottom margin.
    let per_page = ((PAGE_HEIGHT - 2 * MARGIN) / LEADING - 3) as usize;
    let wrapped: Vec<String> = lines.iter().flat_map(|l| wrap(l)).collect();
    let pages: Vec<&[String]> = if wrapped.is_empty() {
        vec![&[][..]]
    } else {
        wrapped.chunks(per_page).collect()
    };
    let n = pages.len();
    // Objects: 1 catalog, 2 pages, 3 font, 4 bold font, then per page: page, content.
    let mut objects: Vec<Vec<u8>> = Vec::new();
    let kids: Vec<String> = (0..n).map(|i| format!("{} 0 R", 5 + 2 * i)).collect();
    objects.push(b"<< /Type /Catalog /Pages 2 0 R >>".to_vec());
    objects.push(format!("<< /Type /Pages /Kids [{}] /Count {n} >>", kids.join(" ")).into_bytes());
    let differences: String = TURKISH
        .iter()
        .map(|(_, code, name)| format!("{code} /{name}"))
        .collect::<Vec<_>>()
        .join(" ");
    for base in ["Helvetica", "Helvetica-Bold"] {
        objects.push(
            format!(
                "<< /Type /Font /Subtype /Type1 /BaseFont /{base} /Encoding << /Type /Encoding /BaseEncoding /WinAnsiEncoding /Differences [{differences}] >> >>"
            )
            .into_bytes(),
        );
    }
    for (i, page_lines) in pages.iter().enumerate() {
        let mut content = Vec::new();
        // The title's baseline one line below the margin, so its capitals stay inside.
        let top = PAGE_HEIGHT - MARGIN - LEADING;
        content.extend_from_slice(format!("BT /F2 14 Tf {MARGIN} {top} Td ").as_bytes());
        content.extend(literal(&printable(title)));
        content.extend_from_slice(
            format!(" Tj /F1 10 Tf 0 -{} Td {LEADING} TL", 2 * LEADING).as_bytes(),
        );
        for line in page_lines.iter() {
            content.extend_from_slice(b" T* ");
            content.extend(literal(line));
            content.extend_from_slice(b" Tj");
        }
        content.extend_from_slice(format!(" ET\nBT /F1 8 Tf {MARGIN} 30 Td ").as_bytes());
        content.extend(literal(&format!("Sayfa {} / {n}", i + 1)));
        content.extend_from_slice(b" Tj ET\n");
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}] /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents {} 0 R >>",
                6 + 2 * i
            )
            .into_bytes(),
        );
        let mut stream = format!("<< /Length {} >>\nstream\n", content.len()).into_bytes();
        stream.extend(content);
        stream.extend_from_slice(b"\nendstream");
        objects.push(stream);
    }

    // A binary comment line after the header tells transfer tools the file is binary.
    let mut pdf = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, body) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        pdf.extend_from_slice(body);
        pdf.extend_from_slice(b"\nendobj\n");
    }
    let xref = pdf.len();
    pdf.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f\r\n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        pdf.extend_from_slice(format!("{o:010} 00000 n\r\n").as_bytes());
    }
    pdf.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    pdf
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len()).position(|w| w == needle)
    }

    /// Every xref entry points at its object, and startxref at the table.
    fn check_structure(pdf: &[u8]) -> usize {
        assert!(pdf.starts_with(b"%PDF-1.4\n"));
        assert!(pdf.ends_with(b"%%EOF\n"));
        let tail = std::str::from_utf8(&pdf[pdf.len() - 40..]).unwrap_or_default();
        let start: usize = tail
            .split("startxref\n")
            .nth(1)
            .and_then(|t| t.lines().next())
            .and_then(|t| t.parse().ok())
            .expect("startxref");
        assert!(pdf[start..].starts_with(b"xref\n0 "));
        let table = &pdf[start..];
        let entries = table.split(|b| *b == b'\n').skip(3);
        let mut count = 0;
        for (i, e) in entries.enumerate() {
            if e.starts_with(b"trailer") {
                break;
            }
            assert_eq!(e.len(), 19, "an entry is 20 bytes with its line end");
            let offset: usize = std::str::from_utf8(&e[..10]).unwrap().parse().unwrap();
            let expected = format!("{} 0 obj\n", i + 1);
            assert!(
                pdf[offset..].starts_with(expected.as_bytes()),
                "object {}",
                i + 1
            );
            count += 1;
        }
        count
    }

    #[test]
    fn a_form_is_a_well_formed_pdf_with_turkish_letters() {
        let lines = vec![
            "Ad: ŞİMŞEK ĞÜLÇİN ıi".to_owned(),
            String::new(),
            "(a) \\ b".to_owned(),
        ];
        let pdf = form_pdf("Başvuru", &lines);
        assert_eq!(check_structure(&pdf), 6);
        assert!(find(&pdf, b"/Count 1").is_some());
        // Ş İ M Ş E K, Ğ Ü L Ç İ N, ı i.
        assert!(find(&pdf, b"(Ad: \x9D\x8FM\x9DEK \x81\xDCL\xC7\x8FN \x90i)").is_some());
        // WinAnsi's own punctuation and Latin-1 signs print; a lower-cased İ keeps one dot.
        assert_eq!(
            literal("’da – “x” 5 °C"),
            b"(\x92da \x96 \x93x\x94 5 \xB0C)".to_vec()
        );
        assert_eq!(
            literal(&printable(&"İSTANBUL".to_lowercase())),
            b"(istanbul)".to_vec()
        );
        assert!(find(&pdf, b"(\\(a\\) \\\\ b)").is_some());
        assert!(find(&pdf, b"/Differences [129 /Gbreve").is_some());
        // Anything else has no glyph: a question mark, never a broken byte.
        assert_eq!(literal("→✓"), b"(??)".to_vec());
    }

    #[test]
    fn long_forms_wrap_and_take_more_pages() {
        let lines: Vec<String> = (0..200).map(|i| format!("Satır {i}")).collect();
        let pdf = form_pdf("Uzun", &lines);
        assert!(
            find(&pdf, b"/Count 4").is_some(),
            "200 lines take 4 pages of 50"
        );
        assert_eq!(check_structure(&pdf), 4 + 2 * 4);
        let fits = |p: &String| p.chars().map(width).sum::<u32>() <= LINE_UNITS;
        let long = "kelime ".repeat(40);
        let parts = wrap(&long);
        assert!(parts.len() > 1 && parts.iter().all(fits), "{parts:?}");
        // Wide capitals wrap sooner than narrow letters; no break point: cut where it fits.
        let wide = wrap(&"W".repeat(95));
        assert!(wide.len() == 2 && wide.iter().all(fits), "{wide:?}");
        assert_eq!(wrap(&"i".repeat(200)).len(), 1);
        let turkish = wrap(&"ŞİMŞEK ĞÜLÇİN ".repeat(8));
        assert!(
            turkish.len() == 2 && turkish.iter().all(fits),
            "{turkish:?}"
        );
        assert_eq!(check_structure(&form_pdf("Boş", &[])), 6);
    }

    /// When poppler's `pdftotext` is installed, a real reader gets the Turkish text back (it
    /// was, when this was written; the test does not need it).
    #[test]
    fn a_pdf_reader_reads_the_turkish_text_back() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let path = dir.path().join("form.pdf");
        let lines = vec!["Ad: ŞİMŞEK ĞÜLÇİN ıi çö".to_owned()];
        std::fs::write(&path, form_pdf("Başvuru Formu", &lines)).unwrap();
        let Ok(out) = std::process::Command::new("pdftotext")
            .arg(&path)
            .arg("-")
            .output()
        else {
            return;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Başvuru Formu") && text.contains("Ad: ŞİMŞEK ĞÜLÇİN ıi çö"),
            "{text}"
        );
    }
}
