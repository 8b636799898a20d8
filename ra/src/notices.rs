//! The texts of the notices a holder gets through the outbox: a status change of one of their
//! certificates (whoever made it) and the reminders 60, 30 and 7 days before one expires. The
//! store queues them (`subject_ref` says which certificate and what happened); the text is
//! made here when the message is sent, from the reference alone.

use ca_core::store::OutboxKind;

use crate::error::{RaError, Result};

/// A notice ready to send: an e-mail's subject and body, or an SMS's text.
pub struct NoticeText {
    pub subject: String,
    pub body: String,
    pub sms: String,
}

fn damaged(subject_ref: &str) -> RaError {
    RaError::invalid(
        "subject_ref",
        format!("\"{subject_ref}\" is not a notice reference nesca writes"),
    )
}

/// The status's words on the portal and in notices.
pub fn status_words(status: &str) -> Option<&'static str> {
    Some(match status {
        "active" => "Geçerli",
        "suspended" => "Askıda",
        "revoked" => "İptal Edildi",
        _ => return None,
    })
}

/// The text of a status notice (`ISSUER/SERIAL/SEQ/STATUS`) or an expiry reminder
/// (`ISSUER/SERIAL/DAYS`); `renewal_url` is where the holder applies again.
pub fn text(kind: OutboxKind, subject_ref: &str, renewal_url: &str) -> Result<NoticeText> {
    let parts: Vec<&str> = subject_ref.split('/').collect();
    match (kind, parts.as_slice()) {
        (OutboxKind::StatusNotice, [_issuer, serial, _seq, status]) => {
            let words = status_words(status).ok_or_else(|| damaged(subject_ref))?;
            Ok(NoticeText {
                subject: format!("Sertifikanızın durumu değişti: {words}"),
                body: format!(
                    "Sayın sertifika sahibi,\n\n{serial} seri numaralı nitelikli elektronik sertifikanızın durumu \
                     \"{words}\" olarak değişti.\n\nBu işlemi siz yapmadıysanız hemen elektronik sertifika hizmet \
                     sağlayıcınızı arayınız.\n"
                ),
                sms: format!(
                    "nesca: {serial} seri numarali sertifikanizin durumu degisti: {}. Bu islemi siz yapmadiysaniz ESHS'nizi arayiniz.",
                    ascii(words)
                ),
            })
        }
        (OutboxKind::ExpiryReminder, [_issuer, serial, days]) => {
            let days: u32 = days.parse().map_err(|_| damaged(subject_ref))?;
            Ok(NoticeText {
                subject: format!("Sertifikanızın süresi {days} gün içinde doluyor"),
                body: format!(
                    "Sayın sertifika sahibi,\n\n{serial} seri numaralı nitelikli elektronik sertifikanızın süresi \
                     {days} gün içinde dolacak. Yenilemek için {renewal_url} adresinden başvurunuz.\n"
                ),
                sms: format!(
                    "nesca: {serial} seri numarali sertifikanizin suresi {days} gun icinde doluyor. Yenileme: {renewal_url}"
                ),
            })
        }
        _ => Err(damaged(subject_ref)),
    }
}

/// Turkish letters as ASCII, for SMS (GSM 7-bit has none of ı, ş, ğ).
fn ascii(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'ı' | 'İ' => 'i',
            'ş' => 's',
            'Ş' => 'S',
            'ğ' => 'g',
            'Ğ' => 'G',
            'ç' => 'c',
            'Ç' => 'C',
            'ö' => 'o',
            'Ö' => 'O',
            'ü' => 'u',
            'Ü' => 'U',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_name_the_certificate_and_what_happened() {
        let t = text(
            OutboxKind::StatusNotice,
            "nes-ca/0a1b/17/suspended",
            "https://x/",
        )
        .unwrap();
        assert!(t.body.contains("0a1b") && t.body.contains("Askıda"));
        assert!(t.sms.contains("Askida") && t.sms.is_ascii());
        let r = text(
            OutboxKind::ExpiryReminder,
            "nes-ca/0a1b/30",
            "https://portal/",
        )
        .unwrap();
        assert!(r.body.contains("30 gün") && r.body.contains("https://portal/"));
        assert!(r.sms.contains("https://portal/"));
    }

    #[test]
    fn a_reference_nesca_did_not_write_is_refused() {
        for (kind, bad) in [
            (OutboxKind::StatusNotice, "nes-ca/0a1b/17/expired"),
            (OutboxKind::StatusNotice, "nes-ca/0a1b"),
            (OutboxKind::ExpiryReminder, "nes-ca/0a1b/x"),
            (OutboxKind::SmsCode, "nes-ca/0a1b/30"),
        ] {
            assert!(text(kind, bad, "u").is_err(), "{bad}");
        }
    }
}
