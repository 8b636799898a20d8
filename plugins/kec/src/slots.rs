//! Check 10 (`slots`): the card's certificate slots as the KEC reports them. When every slot is
//! used the applicant must choose the certificate to overwrite, and that choice travels with the
//! application.

use nesca_channel_kit::{ChannelError, Slots};

/// `slots` is present and consistent, and `overwrite_serial` is given when the card is full.
pub(crate) fn check_slots(
    slots: Option<Slots>,
    overwrite_serial: Option<&str>,
) -> Result<(), ChannelError> {
    let Some(Slots { total, used }) = slots else {
        return Err(ChannelError::slots(
            "slots",
            "is required on the KEC channel: the card's total and used certificate slots",
        ));
    };
    if total == 0 {
        return Err(ChannelError::slots("slots.total", "must be at least 1"));
    }
    if used > total {
        return Err(ChannelError::slots(
            "slots.used",
            format!("{used} is more than slots.total {total}"),
        ));
    }
    if used == total && overwrite_serial.is_none() {
        return Err(ChannelError::slots(
            "slots",
            format!("the card's certificate slots are full ({used} of {total}): overwrite_serial is required"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(slots: Option<Slots>, overwrite: Option<&str>) -> String {
        let e = check_slots(slots, overwrite).unwrap_err();
        assert_eq!((e.code(), e.http_status()), ("slots", 422));
        e.to_string()
    }

    #[test]
    fn a_card_with_room_or_a_chosen_overwrite_passes() {
        assert!(check_slots(Some(Slots { total: 3, used: 0 }), None).is_ok());
        assert!(check_slots(Some(Slots { total: 3, used: 2 }), None).is_ok());
        assert!(check_slots(Some(Slots { total: 3, used: 3 }), Some("0a0a")).is_ok());
        // Overwriting while slots are free is the applicant's choice too.
        assert!(check_slots(Some(Slots { total: 3, used: 1 }), Some("0a0a")).is_ok());
    }

    #[test]
    fn missing_inconsistent_or_full_slots_are_refused() {
        assert_eq!(
            refusal(None, None),
            "slots: is required on the KEC channel: the card's total and used certificate slots"
        );
        assert_eq!(
            refusal(Some(Slots { total: 0, used: 0 }), None),
            "slots.total: must be at least 1"
        );
        assert_eq!(
            refusal(Some(Slots { total: 3, used: 4 }), Some("0a")),
            "slots.used: 4 is more than slots.total 3"
        );
        assert_eq!(
            refusal(Some(Slots { total: 3, used: 3 }), None),
            "slots: the card's certificate slots are full (3 of 3): overwrite_serial is required"
        );
    }
}
