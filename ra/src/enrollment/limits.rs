//! What the enrollment's counters mean: when sign-in attempts lock sign-in, when tries void
//! a code, and how many SMS codes an application gets. The store only counts (atomically,
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
/// person's sign-in: [`MAX_SIGN_IN_FAILURES`], or one once [`ONE_TRY_AFTER_FAILURES`] attempts
/// came from all sources since the person's last sign-in (`person_count`, this one included).
/// A guesser who changes addresses then gets one try per address and lock; the person, from
/// an address of their own, still gets a try with the right password.
pub fn sign_in_allowance(person_count: u32) -> u32 {
    if person_count > ONE_TRY_AFTER_FAILURES {
        1
    } else {
        MAX_SIGN_IN_FAILURES
    }
}

/// Whether the `count`th attempt from a source, when its password is wrong, locks the source.
pub fn sign_in_locks(count: u32, allowance: u32) -> bool {
    count >= allowance
}

/// Whether the `count`th attempt from a source is past its allowance: refused without
/// checking its password.
pub fn beyond_sign_in_limit(count: u32, allowance: u32) -> bool {
    count > allowance
}

/// Whether the `count`th sign-in attempt from an address in its window, whoever it names, is
/// refused (sign-ins give theirs back, so what counts is failures).
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
        let allowance = sign_in_allowance(1);
        assert_eq!(allowance, MAX_SIGN_IN_FAILURES);
        assert!(!sign_in_locks(0, allowance));
        assert!(!sign_in_locks(MAX_SIGN_IN_FAILURES - 1, allowance));
        assert!(sign_in_locks(MAX_SIGN_IN_FAILURES, allowance));
        // A failure counted at the same time as the one that reached the limit locks too.
        assert!(sign_in_locks(MAX_SIGN_IN_FAILURES + 1, allowance));
        // The attempt at the limit is still checked (the right password signs in); the next
        // is not.
        assert!(!beyond_sign_in_limit(MAX_SIGN_IN_FAILURES, allowance));
        assert!(beyond_sign_in_limit(MAX_SIGN_IN_FAILURES + 1, allowance));
    }

    #[test]
    fn many_failures_from_all_sources_leave_each_source_one_try() {
        assert_eq!(
            sign_in_allowance(ONE_TRY_AFTER_FAILURES),
            MAX_SIGN_IN_FAILURES
        );
        let one = sign_in_allowance(ONE_TRY_AFTER_FAILURES + 1);
        assert_eq!(one, 1);
        // The first try from a fresh source is checked; a wrong one locks it.
        assert!(!beyond_sign_in_limit(1, one));
        assert!(sign_in_locks(1, one));
        // A source that had tries left before gets none more.
        assert!(beyond_sign_in_limit(3, one));
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
