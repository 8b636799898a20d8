//! The Turkish letters outside ASCII and their base letters: what a text becomes where only
//! ASCII goes (an SMS in GSM 7-bit, which has none of ı, ş, ğ), where a name is compared
//! without its marks, or where a PDF font has no glyph width for the letter.

/// The base letter of a Turkish (or circumflexed) letter, case kept (`İ` → `I`, `ı` → `i`);
/// every other character as it is.
pub(crate) fn base_letter(c: char) -> char {
    match c {
        'ç' => 'c',
        'Ç' => 'C',
        'ğ' => 'g',
        'Ğ' => 'G',
        'ı' | 'î' => 'i',
        'İ' | 'Î' => 'I',
        'ö' => 'o',
        'Ö' => 'O',
        'ş' => 's',
        'Ş' => 'S',
        'ü' | 'û' => 'u',
        'Ü' | 'Û' => 'U',
        'â' => 'a',
        'Â' => 'A',
        other => other,
    }
}

/// `s` with every Turkish letter replaced by its base letter.
pub(crate) fn to_ascii_letters(s: &str) -> String {
    s.chars().map(base_letter).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turkish_letters_keep_their_case() {
        assert_eq!(
            to_ascii_letters("İptal Edildi, Askıda, ŞÇĞÖÜ"),
            "Iptal Edildi, Askida, SCGOU"
        );
        assert_eq!(to_ascii_letters("çğıöşü âîû"), "cgiosu aiu");
    }
}
