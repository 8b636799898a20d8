//! What the enrollment's counters mean: how many tries an address gets at a person's sign-in
//! before it is locked out of it (fewer once the person drew many attempts, or the address
//! made many, whoever they named), when tries void a code, and how many SMS codes an
//! application gets. The store only counts (atomically,
//! `n = n + 1 RETURNING n`, before the password or code is checked); these decide, from the
//! count it returned or the record read.
//!
//! A count at or past the limit decides (not only the one equal to it): two failures counted
//! at once get different counts, so at least one reaches the limit, and one that lands after
//! a crash between the count and the lock still locks. Locking or voiding twice is harmless.

use super::{
    MAX_CODES, MAX_CODE_FAILURES, MAX_SIGN_IN_FAILURES, ONE_TRY_AFTER_FAILURES,
    SOURCE_ATTEMPTS_PER_WINDOW,
};
use crate::error::{RaError, Result};

/// The wrong passwords one source may send for a person before it is locked out of that
/// person's sign-in: [`MAX_SIGN_IN_FAILURES`], or one once [`ONE_TRY_AFTER_FAILURES`]
/// attempts came from all sources since the person's last sign-in (`person_count`, this one
/// included), or once the address itself is past its budget (`address_slowed`, see
/// [`source_slowed`]). A guesser who changes addresses, or sprays many people from one, then
/// gets one try per address and lock; the person still gets a try with the right password.
pub fn sign_in_allowance(person_count: u32, address_slowed: bool) -> u32 {
    if address_slowed || person_count > ONE_TRY_AFTER_FAILURES {
        1
    } else {
        MAX_SIGN_IN_FAILURES
    }
}

/// Whether the `count`th attempt from a source, when its password is wrong, locks the source
/// (`allowance`: [`sign_in_allowance`]).
pub fn sign_in_locks(count: u32, allowance: u32) -> bool {
    count >= allowance
}

/// Whether the `count`th attempt from a source is past every limit: refused without checking
/// its password (parallel guesses, or a crash between a count and its lock). The bound is
/// [`MAX_SIGN_IN_FAILURES`] whatever the allowance: an allowance that shrank after the source's
/// earlier tries still leaves its next attempt checked (a wrong one locks it at once).
pub fn beyond_sign_in_limit(count: u32) -> bool {
    count > MAX_SIGN_IN_FAILURES
}

/// Whether an address that made `count` sign-in attempts in its window, whoever they named,
/// is past its budget (sign-ins give theirs back, so what counts is failures).
pub fn source_slowed(count: u32) -> bool {
    count > SOURCE_ATTEMPTS_PER_WINDOW
}

/// Whether the code is void after `count` tries (or, for a try counted `count`th and wrong,
/// whether it voids the code).
pub fn code_voided(count: u32) -> bool {
    count >= MAX_CODE_FAILURES
}

/// Whether the `count`th try of a code is past the limit: refused without checking it.
pub fn beyond_code_limit(count: u32) -> bool {
    count > MAX_CODE_FAILURES
}

/// Wrong codes left before the code is void, after `count` of them.
pub fn code_tries_left(count: u32) -> u32 {
    MAX_CODE_FAILURES.saturating_sub(count)
}

/// Refuses another SMS code once `sent` codes were queued (the form's and the resends).
pub fn check_codes_left(sent: u32) -> Result<()> {
    if sent >= MAX_CODES {
        return Err(RaError::invalid(
            "sms_code",
            format!("{MAX_CODES} codes were sent already; ask the ESHS to reset the application"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_locks_from_the_limit_on() {
        let allowance = sign_in_allowance(1, false);
        assert_eq!(allowance, MAX_SIGN_IN_FAILURES);
        assert!(!sign_in_locks(0, allowance));
        assert!(!sign_in_locks(MAX_SIGN_IN_FAILURES - 1, allowance));
        assert!(sign_in_locks(MAX_SIGN_IN_FAILURES, allowance));
        // A failure counted at the same time as the one that reached the limit locks too.
        assert!(sign_in_locks(MAX_SIGN_IN_FAILURES + 1, allowance));
        // The attempt at the limit is still checked (the right password signs in); the next
        // is not.
        assert!(!beyond_sign_in_limit(MAX_SIGN_IN_FAILURES));
        assert!(beyond_sign_in_limit(MAX_SIGN_IN_FAILURES + 1));
    }

    #[test]
    fn many_attempts_on_a_person_or_from_an_address_leave_one_try() {
        assert_eq!(
            sign_in_allowance(ONE_TRY_AFTER_FAILURES, false),
            MAX_SIGN_IN_FAILURES
        );
        for one in [
            sign_in_allowance(ONE_TRY_AFTER_FAILURES + 1, false),
            sign_in_allowance(1, true),
        ] {
            assert_eq!(one, 1);
            // A wrong try locks at once, whether the source had tries before or not.
            assert!(sign_in_locks(1, one));
            assert!(sign_in_locks(3, one));
        }
        // A source with earlier tries is still checked (not refused unchecked).
        assert!(!beyond_sign_in_limit(3));
    }

    #[test]
    fn an_address_is_slowed_past_its_window_budget() {
        assert!(!source_slowed(SOURCE_ATTEMPTS_PER_WINDOW));
        assert!(source_slowed(SOURCE_ATTEMPTS_PER_WINDOW + 1));
    }

    #[test]
    fn codes_are_void_from_the_limit_on() {
        assert!(!code_voided(MAX_CODE_FAILURES - 1));
        assert!(code_voided(MAX_CODE_FAILURES));
        assert!(code_voided(MAX_CODE_FAILURES + 1));
        assert!(!beyond_code_limit(MAX_CODE_FAILURES));
        assert!(beyond_code_limit(MAX_CODE_FAILURES + 1));
        assert_eq!(code_tries_left(1), MAX_CODE_FAILURES - 1);
        assert_eq!(code_tries_left(MAX_CODE_FAILURES + 4), 0);
    }

    #[test]
    fn the_sms_quota_counts_every_code_sent() {
        for sent in 0..MAX_CODES {
            check_codes_left(sent).unwrap();
        }
        for sent in [MAX_CODES, MAX_CODES + 1] {
            let err = check_codes_left(sent).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("sms_code: {MAX_CODES} codes were sent already; ask the ESHS to reset the application")
            );
        }
    }
}
