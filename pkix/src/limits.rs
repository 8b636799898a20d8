//! Input size caps: a verifier facing the network refuses large inputs before parsing them.

use crate::PkixError;

/// The largest CMS ContentInfo accepted: 1 MiB. A KDBO or a commitment signature is a few
/// kilobytes; anything near this is not one.
pub const MAX_CMS_LEN: usize = 1 << 20;

/// The largest certificate accepted: 64 KiB (an ID-card certificate is under 2 KiB).
pub const MAX_CERTIFICATE_LEN: usize = 64 << 10;

/// Refuses `bytes` when longer than `limit`.
pub(crate) fn check_len(what: &'static str, bytes: &[u8], limit: usize) -> Result<(), PkixError> {
    if bytes.len() > limit {
        return Err(PkixError::TooLarge {
            what,
            len: bytes.len(),
            limit,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_itself_is_accepted_one_more_byte_is_not() {
        assert!(check_len("x", &[0; 16], 16).is_ok());
        assert_eq!(
            check_len("x", &[0; 17], 16),
            Err(PkixError::TooLarge {
                what: "x",
                len: 17,
                limit: 16
            })
        );
    }
}
