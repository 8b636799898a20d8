//! The holders of T.C. identity cards in the fixtures.

use crate::support::demo::{GIVEN, SURNAME, TCKN};

/// A holder of a T.C. identity card.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Person {
    pub tckn: &'static str,
    pub given: &'static str,
    pub surname: &'static str,
}

/// AYŞE YILMAZ, the holder of the other e2e tests.
pub(crate) const AYSE: Person = Person {
    tckn: TCKN,
    given: GIVEN,
    surname: SURNAME,
};

/// A second person (10000000078 passes the check digits: see [`is_valid_tckn`]).
pub(crate) const CAGRI: Person = Person {
    tckn: "10000000078",
    given: "ÇAĞRI",
    surname: "ÖZTÜRK",
};

/// The T.C. Kimlik No rule (11 digits, the first not 0; the 10th and 11th are check digits over
/// the others), to prove the fixtures' numbers valid.
pub(crate) fn is_valid_tckn(s: &str) -> bool {
    let d: Vec<i64> = s.bytes().map(|b| i64::from(b) - i64::from(b'0')).collect();
    if d.len() != 11 || d.iter().any(|x| !(0..=9).contains(x)) || d[0] == 0 {
        return false;
    }
    let odd = d[0] + d[2] + d[4] + d[6] + d[8];
    let even = d[1] + d[3] + d[5] + d[7];
    d[9] == (7 * odd - even).rem_euclid(10) && d[10] == d[..10].iter().sum::<i64>().rem_euclid(10)
}
