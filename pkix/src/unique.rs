//! "At most one": the extensions (RFC 5280 §4.2), signed attributes (RFC 5652 §11) and subject
//! attributes read here must not repeat, and a repeat is refused rather than one of them picked.

/// The one item of `items`, `None` when there is none; `Err(n)` when there are `n` (two or more).
pub(crate) fn at_most_one<I: Iterator>(mut items: I) -> Result<Option<I::Item>, usize> {
    let Some(first) = items.next() else {
        return Ok(None);
    };
    match items.count() {
        0 => Ok(Some(first)),
        others => Err(others + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_one_or_how_many() {
        assert_eq!(at_most_one([0u8; 0].iter()), Ok(None));
        assert_eq!(at_most_one([7].iter()), Ok(Some(&7)));
        assert_eq!(at_most_one([7, 8, 9].iter()), Err(3));
    }
}
