//! Hand-written DER (X.690) for what a CRL writes once per entry: TLV headers and times.
//!
//! A million-entry CRL writes a million serials and a million or two times. Going through the
//! `der` crate's owned types would allocate several times per entry; these helpers append to a
//! caller's buffer instead. The header of the CRL (Name, AlgorithmIdentifier, Extensions) is
//! encoded with `der`; tests check that both encoders agree on times.

use der::asn1::{GeneralizedTime, UtcTime};
use der::DateTime;
use nesca_ca_types::UnixTime;
use x509_cert::time::Time;

use crate::error::CrlError;

pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_ENUMERATED: u8 = 0x0a;
pub(crate) const TAG_UTC_TIME: u8 = 0x17;
pub(crate) const TAG_GENERALIZED_TIME: u8 = 0x18;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;

/// The largest length nesca writes: the `der` crate's `Length::MAX` (256 MiB − 1), so that
/// every CRL nesca publishes can be read back by the same stack (tests, OCSP, e2e tools).
pub(crate) const MAX_LEN: usize = 0x0fff_ffff;

/// A TLV header: tag and length octets, at most 1 + 1 + 4 octets.
#[derive(Clone, Copy)]
pub(crate) struct Header {
    bytes: [u8; Header::MAX],
    len: u8,
}

impl Header {
    /// The longest header nesca writes (tag, 0x84, four length octets).
    pub(crate) const MAX: usize = 6;

    /// The header for `len` content octets: definite form, minimal length octets
    /// (X.690 §8.1.3, DER §10.1). `None` above [`MAX_LEN`].
    pub(crate) fn new(tag: u8, len: usize) -> Option<Header> {
        if len > MAX_LEN {
            return None;
        }
        let mut bytes = [0u8; Header::MAX];
        bytes[0] = tag;
        let n = if len < 0x80 {
            bytes[1] = len as u8;
            2
        } else {
            let be = (len as u32).to_be_bytes();
            let skip = be.iter().position(|b| *b != 0).unwrap_or(3);
            let octets = &be[skip..];
            bytes[1] = 0x80 | octets.len() as u8;
            bytes[2..2 + octets.len()].copy_from_slice(octets);
            2 + octets.len()
        };
        Some(Header {
            bytes,
            len: n as u8,
        })
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// Appends tag, length and `content`. Only for the small TLVs of an entry (whose lengths
/// cannot reach [`MAX_LEN`]); returns `false` if the length does not fit.
#[must_use]
pub(crate) fn push_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) -> bool {
    match Header::new(tag, content.len()) {
        Some(h) => {
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(content);
            true
        }
        None => false,
    }
}

/// An instant as a calendar time, the one way from [`UnixTime`] to the CRL's times; refuses
/// what X.509 times cannot carry here (before 1970, after 9999-12-31T23:59:59Z) as
/// [`CrlError::Time`] for `field`.
pub(crate) fn date_time(field: &'static str, t: UnixTime) -> Result<DateTime, CrlError> {
    let unix = t.secs();
    let refuse = |rule| CrlError::Time { field, unix, rule };
    let secs = u64::try_from(unix).map_err(|_| refuse("before 1970-01-01T00:00:00Z"))?;
    DateTime::from_unix_duration(std::time::Duration::from_secs(secs))
        .map_err(|_| refuse("after 9999-12-31T23:59:59Z"))
}

/// Whether RFC 5280 §5.1.2.4/§5.1.2.6 want UTCTime (through 2049) for this date.
fn is_utc_year(dt: &DateTime) -> bool {
    dt.year() <= UtcTime::MAX_YEAR
}

/// `Time` (RFC 5280 §5.1.2.4, §5.1.2.5, §5.1.2.6): UTCTime through 2049, GeneralizedTime from
/// 2050, always in Zulu with seconds and without fractions.
pub(crate) fn push_time(
    out: &mut Vec<u8>,
    field: &'static str,
    t: UnixTime,
) -> Result<(), CrlError> {
    let dt = date_time(field, t)?;
    if is_utc_year(&dt) {
        out.extend_from_slice(&[TAG_UTC_TIME, 13]);
        push_2(out, (dt.year() % 100) as u8);
    } else {
        out.extend_from_slice(&[TAG_GENERALIZED_TIME, 15]);
        push_2(out, (dt.year() / 100) as u8);
        push_2(out, (dt.year() % 100) as u8);
    }
    push_rest(out, &dt);
    Ok(())
}

/// GeneralizedTime whatever the year: invalidityDate is always GeneralizedTime
/// (RFC 5280 §5.3.2).
pub(crate) fn push_generalized_time(
    out: &mut Vec<u8>,
    field: &'static str,
    t: UnixTime,
) -> Result<(), CrlError> {
    let dt = date_time(field, t)?;
    out.extend_from_slice(&[TAG_GENERALIZED_TIME, 15]);
    push_2(out, (dt.year() / 100) as u8);
    push_2(out, (dt.year() % 100) as u8);
    push_rest(out, &dt);
    Ok(())
}

/// MMDDHHMMSSZ.
fn push_rest(out: &mut Vec<u8>, dt: &DateTime) {
    push_2(out, dt.month());
    push_2(out, dt.day());
    push_2(out, dt.hour());
    push_2(out, dt.minutes());
    push_2(out, dt.seconds());
    out.push(b'Z');
}

/// Two decimal digits of `v` (< 100 by construction of `DateTime`).
fn push_2(out: &mut Vec<u8>, v: u8) {
    out.push(b'0' + (v / 10) % 10);
    out.push(b'0' + v % 10);
}

/// The same choice as [`push_time`], as the `der` type the header uses.
pub(crate) fn time(field: &'static str, t: UnixTime) -> Result<Time, CrlError> {
    let dt = date_time(field, t)?;
    if is_utc_year(&dt) {
        UtcTime::from_date_time(dt)
            .map(Time::UtcTime)
            .map_err(CrlError::der("UTCTime"))
    } else {
        Ok(Time::GeneralTime(GeneralizedTime::from_date_time(dt)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Encode;

    #[test]
    fn headers_are_minimal() {
        let h = |len| Header::new(0x30, len).unwrap().as_bytes().to_vec();
        assert_eq!(h(0), [0x30, 0]);
        assert_eq!(h(127), [0x30, 127]);
        assert_eq!(h(128), [0x30, 0x81, 0x80]);
        assert_eq!(h(255), [0x30, 0x81, 0xff]);
        assert_eq!(h(256), [0x30, 0x82, 0x01, 0x00]);
        assert_eq!(h(0xffff), [0x30, 0x82, 0xff, 0xff]);
        assert_eq!(h(0x10000), [0x30, 0x83, 0x01, 0x00, 0x00]);
        assert_eq!(h(MAX_LEN), [0x30, 0x84, 0x0f, 0xff, 0xff, 0xff]);
        assert!(Header::new(0x30, MAX_LEN + 1).is_none());
        // The same as the der crate writes.
        for len in [
            0usize,
            1,
            127,
            128,
            200,
            255,
            256,
            65_535,
            65_536,
            1 << 24,
            MAX_LEN,
        ] {
            let l = der::Length::try_from(len).unwrap();
            let mut v = vec![0x30];
            l.encode_to_vec(&mut v).unwrap();
            assert_eq!(h(len), v, "length {len}");
        }
    }

    #[test]
    fn hand_written_times_match_der() {
        // Epoch, a leap day, the last UTCTime second, the first GeneralizedTime second, the end.
        for unix in [
            0,
            951_782_400,
            1_795_305_600,
            2_524_607_999,
            2_524_608_000,
            4_102_444_800,
            253_402_300_799,
        ]
        .map(UnixTime::from_secs)
        {
            let mut mine = Vec::new();
            push_time(&mut mine, "t", unix).unwrap();
            assert_eq!(
                mine,
                time("t", unix).unwrap().to_der().unwrap(),
                "unix {unix}"
            );
            let mut gen = Vec::new();
            push_generalized_time(&mut gen, "t", unix).unwrap();
            let dt = date_time("t", unix).unwrap();
            assert_eq!(gen, GeneralizedTime::from_date_time(dt).to_der().unwrap());
        }
    }

    #[test]
    fn utc_time_through_2049_generalized_from_2050() {
        let mut v = Vec::new();
        push_time(&mut v, "t", UnixTime::from_secs(2_524_607_999)).unwrap(); // 2049-12-31T23:59:59Z
        assert_eq!(v, b"\x17\x0d491231235959Z");
        v.clear();
        push_time(&mut v, "t", UnixTime::from_secs(2_524_608_000)).unwrap(); // 2050-01-01T00:00:00Z
        assert_eq!(v, b"\x18\x0f20500101000000Z");
        v.clear();
        push_generalized_time(&mut v, "t", UnixTime::from_secs(0)).unwrap();
        assert_eq!(v, b"\x18\x0f19700101000000Z");
    }

    #[test]
    fn out_of_range_times_are_errors_not_panics() {
        let mut v = Vec::new();
        let e = push_time(&mut v, "revocationDate", UnixTime::from_secs(-1)).unwrap_err();
        assert!(
            matches!(
                e,
                CrlError::Time {
                    field: "revocationDate",
                    unix: -1,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("before 1970"), "{e}");
        assert!(push_time(&mut v, "t", UnixTime::from_secs(i64::MIN)).is_err());
        assert!(push_time(&mut v, "t", UnixTime::from_secs(253_402_300_800))
            .unwrap_err()
            .to_string()
            .contains("after 9999"));
        assert!(push_time(&mut v, "t", UnixTime::from_secs(i64::MAX)).is_err());
        assert!(push_generalized_time(&mut v, "t", UnixTime::from_secs(i64::MAX)).is_err());
        assert!(time("t", UnixTime::from_secs(-5)).is_err());
        assert!(v.is_empty());
    }
}
