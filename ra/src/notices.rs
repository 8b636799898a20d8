//! What a holder is told through the outbox, and when: a status change of one of their
//! certificates (whoever made it), a change of their security word, and the reminders before a
//! certificate expires ([`REMINDER_BANDS`]). The store queues them (`subject_ref` says which
//! certificate and what happened); the text is made here when the message is sent, from the
//! reference alone.

use ca_core::store::{CertStatus, OutboxKind};

use crate::error::{RaError, Result};

/// The expiry reminders: a certificate expiring within the first number of days, and after
/// the second, is reminded once with the first in its text (60, 30 and 7 days before notAfter;
/// a certificate issued with less time left starts in the band it falls in).
pub const REMINDER_BANDS: [(u32, u32); 3] = [(60, 30), (30, 7), (7, 0)];

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

/// A status in the holder's words (the portal's and the notices').
pub fn status_words(status: CertStatus) -> Option<&'static str> {
    Some(match status {
        CertStatus::Active => "Geçerli",
        CertStatus::Suspended => "Askıda",
        CertStatus::Revoked => "İptal Edildi",
        _ => return None,
    })
}

/// The text of a status notice (`ISSUER/SERIAL/SEQ/STATUS`), an expiry reminder
/// (`ISSUER/SERIAL/DAYS`) or a security-word notice (`TCKN/UNIX-TIME`); `renewal_url` is
/// where the holder renews.
pub fn text(kind: OutboxKind, subject_ref: &str, renewal_url: &str) -> Result<NoticeText> {
    let parts: Vec<&str> = subject_ref.split('/').collect();
    let words = |status: &str| {
        CertStatus::parse(status)
            .ok()
            .and_then(status_words)
            .ok_or_else(|| damaged(subject_ref))
    };
    match (kind, parts.as_slice()) {
        (OutboxKind::StatusNotice, [_issuer, serial, _seq, status]) => {
            let words = words(status)?;
            Ok(NoticeText {
                subject: format!("Sertifikanızın durumu değişti: {words}"),
                body: format!(
                    "Sayın sertifika sahibi,\n\n{serial} seri numaralı nitelikli elektronik sertifikanızın durumu \
                     \"{words}\" olarak değişti.\n\nBu işlemi siz yapmadıysanız hemen elektronik sertifika hizmet \
                     sağlayıcınızı arayınız.\n"
                ),
                sms: format!(
                    "nesca: {serial} seri numarali sertifikanizin durumu degisti: {}. Bu islemi siz yapmadiysaniz ESHS'nizi arayiniz.",
                    crate::turkish::to_ascii_letters(words)
                ),
            })
        }
        (OutboxKind::ExpiryReminder, [_issuer, serial, days]) => {
            let days: u32 = days.parse().map_err(|_| damaged(subject_ref))?;
            Ok(NoticeText {
                subject: format!("Sertifikanızın süresi {days} gün içinde doluyor"),
                body: format!(
                    "Sayın sertifika sahibi,\n\n{serial} seri numaralı nitelikli elektronik sertifikanızın süresi \
                     {days} gün içinde dolacak. Yenilemek için: {renewal_url}\n"
                ),
                sms: format!(
                    "nesca: {serial} seri numarali sertifikanizin suresi {days} gun icinde doluyor. Yenileme: {renewal_url}"
                ),
            })
        }
        (OutboxKind::SecurityWordNotice, [_tckn, at]) if at.parse::<i64>().is_ok() => {
            Ok(NoticeText {
                subject: "Güvenlik sözcüğünüz değiştirildi".into(),
                body: "Sayın sertifika sahibi,\n\nSertifika portalında güvenlik sözcüğünüz değiştirildi.\n\n\
                       Bu işlemi siz yapmadıysanız hemen elektronik sertifika hizmet sağlayıcınızı arayınız.\n"
                    .into(),
                sms: "nesca: Guvenlik sozcugunuz degistirildi. Bu islemi siz yapmadiysaniz ESHS'nizi arayiniz."
                    .into(),
            })
        }
        _ => Err(damaged(subject_ref)),
    }
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
            OutboxKind::StatusNotice,
            "nes-ca/0a1b/18/revoked",
            "https://x/",
        )
        .unwrap();
        assert!(
            r.sms.contains("Iptal Edildi") && r.sms.is_ascii(),
            "{}",
            r.sms
        );
        let r = text(
            OutboxKind::ExpiryReminder,
            "nes-ca/0a1b/30",
            "https://portal/",
        )
        .unwrap();
        assert!(r.body.contains("30 gün") && r.body.contains("https://portal/"));
        assert!(r.sms.contains("https://portal/"));
        let w = text(
            OutboxKind::SecurityWordNotice,
            "10000000146/1795305600",
            "u",
        )
        .unwrap();
        assert!(w.sms.is_ascii() && w.body.contains("güvenlik sözcüğünüz"));
    }

    #[test]
    fn a_reference_nesca_did_not_write_is_refused() {
        for (kind, bad) in [
            (OutboxKind::StatusNotice, "nes-ca/0a1b/17/expired"),
            (OutboxKind::StatusNotice, "nes-ca/0a1b/17/reserved"),
            (OutboxKind::StatusNotice, "nes-ca/0a1b"),
            (OutboxKind::ExpiryReminder, "nes-ca/0a1b/x"),
            (OutboxKind::SecurityWordNotice, "10000000146/x"),
            (OutboxKind::SmsCode, "nes-ca/0a1b/30"),
        ] {
            assert!(text(kind, bad, "u").is_err(), "{bad}");
        }
    }

    #[test]
    fn the_bands_cover_the_last_sixty_days_without_a_gap() {
        let mut until = 0;
        for (days, after) in REMINDER_BANDS.iter().rev() {
            assert_eq!(*after, until);
            until = *days;
        }
        assert_eq!(until, 60);
    }
}
