//! When to issue full and delta CRLs, and how long each is valid. Pure: times are passed in,
//! so every edge is testable without a clock.

use std::time::Duration;

use nesca_ca_types::UnixTime;

use crate::error::CrlError;
use crate::header::CrlType;

/// The kind of CRL that is due.
pub type CrlKindDue = CrlType;

/// Full CRL every `full_every`, delta CRL every `delta_every`;
/// nextUpdate = thisUpdate + `full_validity` / `delta_validity` (RFC 5280 §5.1.2.5).
/// Without `deltas` (a root's CRL of the CAs it certified, the ARL: few entries, rarely
/// changed) only full CRLs are issued, and they may run longer ([`Self::MAX_ARL_VALIDITY`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrlSchedule {
    pub full_every: Duration,
    pub delta_every: Duration,
    pub full_validity: Duration,
    pub delta_validity: Duration,
    /// Whether delta CRLs are issued between full ones.
    pub deltas: bool,
}

impl CrlSchedule {
    /// The longest validity of a CRL without deltas (an ARL): relying parties keep it until
    /// its nextUpdate, and a root's key comes out for it rarely (an offline root once a
    /// quarter, say).
    pub const MAX_ARL_VALIDITY: Duration = Duration::from_secs(366 * 24 * 3600);

    /// Full CRLs only, every `every`, valid for `validity`.
    pub fn full_only(every: Duration, validity: Duration) -> CrlSchedule {
        CrlSchedule {
            full_every: every,
            delta_every: every,
            full_validity: validity,
            delta_validity: validity,
            deltas: false,
        }
    }

    /// The longest validity nesca gives a CRL with deltas (an issuing CA's; a root's ARL has
    /// [`Self::MAX_ARL_VALIDITY`]). A relying party may cache a CRL until its
    /// nextUpdate, so this bounds how long a revocation can stay unseen.
    pub const MAX_VALIDITY: Duration = Duration::from_secs(30 * 24 * 3600);

    /// Refuses a schedule that would let a published CRL expire before the next one is due,
    /// that never issues a delta, or whose numbers are zero or absurd. The error names the
    /// field.
    pub fn validate(&self) -> Result<(), CrlError> {
        let err = |field, rule: String| Err(CrlError::Schedule { field, rule });
        let (max, max_text) = if self.deltas {
            (Self::MAX_VALIDITY, "30 days")
        } else {
            (Self::MAX_ARL_VALIDITY, "366 days")
        };
        let checked: &[(&'static str, Duration)] = if self.deltas {
            &[
                ("full_every", self.full_every),
                ("delta_every", self.delta_every),
                ("full_validity", self.full_validity),
                ("delta_validity", self.delta_validity),
            ]
        } else {
            &[
                ("full_every", self.full_every),
                ("full_validity", self.full_validity),
            ]
        };
        for &(field, d) in checked {
            // Whole seconds: CRL times have a resolution of one second.
            if d.as_secs() == 0 {
                return err(field, "must be at least one second".into());
            }
            if d > max {
                return err(
                    field,
                    format!(
                        "{} s is longer than the {} s ({max_text}) ceiling",
                        d.as_secs(),
                        max.as_secs()
                    ),
                );
            }
        }
        if self.full_validity < self.full_every {
            return err(
                "full_validity",
                format!(
                    "{} s is shorter than full_every ({} s): the full CRL would expire before the next one is due",
                    self.full_validity.as_secs(),
                    self.full_every.as_secs()
                ),
            );
        }
        if !self.deltas {
            return Ok(());
        }
        if self.delta_validity < self.delta_every {
            return err(
                "delta_validity",
                format!(
                    "{} s is shorter than delta_every ({} s): the delta CRL would expire before the next one is due",
                    self.delta_validity.as_secs(),
                    self.delta_every.as_secs()
                ),
            );
        }
        if self.delta_every >= self.full_every {
            return err(
                "delta_every",
                format!(
                    "{} s is not shorter than full_every ({} s): no delta CRL would ever fall between two full CRLs",
                    self.delta_every.as_secs(),
                    self.full_every.as_secs()
                ),
            );
        }
        Ok(())
    }

    /// What is due at `now` given when the last full and delta CRLs were issued (their
    /// thisUpdate), full first.
    ///
    /// - No full CRL yet, or `full_every` elapsed: a full CRL.
    /// - Otherwise a delta when none was issued since the last full CRL (a delta must name the
    ///   newest full CRL as its base, so one follows each full CRL at once), or `delta_every`
    ///   elapsed since the last delta.
    /// - A last time in the future (the clock went back) makes that kind due: a published CRL
    ///   must not carry a thisUpdate ahead of the clock for longer than necessary.
    pub fn due(
        &self,
        now: UnixTime,
        last_full: Option<UnixTime>,
        last_delta: Option<UnixTime>,
    ) -> Option<CrlKindDue> {
        let elapsed =
            |last: UnixTime, every: Duration| last > now || now.secs_since(last) >= secs(every);
        let Some(full) = last_full else {
            return Some(CrlType::Full);
        };
        if elapsed(full, self.full_every) {
            return Some(CrlType::Full);
        }
        if !self.deltas {
            return None;
        }
        match last_delta {
            None => Some(CrlType::Delta),
            Some(delta) if delta < full => Some(CrlType::Delta),
            Some(delta) if elapsed(delta, self.delta_every) => Some(CrlType::Delta),
            Some(_) => None,
        }
    }

    /// When [`CrlSchedule::due`] will next return something, for a loop that sleeps until
    /// then (`now` or earlier: something is due already).
    pub fn next_due_at(
        &self,
        last_full: Option<UnixTime>,
        last_delta: Option<UnixTime>,
    ) -> UnixTime {
        let Some(full) = last_full else {
            return DUE_ALREADY;
        };
        let full_at = full.plus(self.full_every);
        if !self.deltas {
            return full_at;
        }
        let delta_at = match last_delta {
            Some(delta) if delta >= full => delta.plus(self.delta_every),
            _ => return DUE_ALREADY,
        };
        full_at.min(delta_at)
    }

    /// nextUpdate for a CRL of `kind` with thisUpdate `this_update`.
    pub fn next_update(&self, kind: CrlType, this_update: UnixTime) -> UnixTime {
        let validity = match kind {
            CrlType::Full => self.full_validity,
            CrlType::Delta => self.delta_validity,
        };
        this_update.plus(validity)
    }
}

/// What [`CrlSchedule::next_due_at`] answers when something is due already: the earliest
/// instant there is.
const DUE_ALREADY: UnixTime = UnixTime::from_secs(i64::MIN);

/// Whole seconds; durations beyond i64 seconds (never valid here) saturate.
fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = 3600;

    fn schedule() -> CrlSchedule {
        CrlSchedule {
            full_every: Duration::from_secs(24 * H),
            delta_every: Duration::from_secs(H),
            full_validity: Duration::from_secs(7 * 24 * H),
            delta_validity: Duration::from_secs(4 * H),
            deltas: true,
        }
    }

    #[test]
    fn without_deltas_only_full_crls_are_due_and_they_may_run_a_year() {
        let d = |days: u64| Duration::from_secs(days * 24 * H);
        let arl = CrlSchedule::full_only(d(30), d(90));
        arl.validate().unwrap();
        let t = 1_795_305_600;
        let day = 24 * 3600;
        assert_eq!(due(&arl, t, None, None), Some(CrlType::Full));
        assert_eq!(due(&arl, t + day, Some(t), None), None, "no delta follows");
        assert_eq!(due(&arl, t + 30 * day, Some(t), None), Some(CrlType::Full));
        assert_eq!(next_due_at(&arl, Some(t), None), t + 30 * day);
        assert_eq!(next_update(&arl, CrlType::Full, t), t + 90 * day);
        assert_eq!(
            field(&CrlSchedule::full_only(d(30), d(367))),
            "full_validity"
        );
        assert_eq!(
            field(&CrlSchedule::full_only(d(30), d(29))),
            "full_validity"
        );
        assert_eq!(
            field(&CrlSchedule::full_only(Duration::ZERO, d(29))),
            "full_every"
        );
        // With deltas, 90 days is past the ceiling.
        let mut with = arl;
        with.deltas = true;
        assert_eq!(field(&with), "full_validity");
    }

    fn field(s: &CrlSchedule) -> &'static str {
        match s.validate() {
            Err(CrlError::Schedule { field, .. }) => field,
            other => panic!("expected a schedule error, got {other:?}"),
        }
    }

    /// [`CrlSchedule::due`] over Unix seconds, so the cases read as arithmetic.
    fn due(s: &CrlSchedule, now: i64, full: Option<i64>, delta: Option<i64>) -> Option<CrlType> {
        let t = UnixTime::from_secs;
        s.due(t(now), full.map(t), delta.map(t))
    }

    /// [`CrlSchedule::next_due_at`] over Unix seconds.
    fn next_due_at(s: &CrlSchedule, full: Option<i64>, delta: Option<i64>) -> i64 {
        let t = UnixTime::from_secs;
        s.next_due_at(full.map(t), delta.map(t)).secs()
    }

    /// [`CrlSchedule::next_update`] over Unix seconds.
    fn next_update(s: &CrlSchedule, kind: CrlType, this_update: i64) -> i64 {
        s.next_update(kind, UnixTime::from_secs(this_update)).secs()
    }

    #[test]
    fn a_sound_schedule_validates() {
        schedule().validate().unwrap();
        // Validity equal to the interval is the limit that still never leaves a gap.
        let mut s = schedule();
        s.full_validity = s.full_every;
        s.delta_validity = s.delta_every;
        s.validate().unwrap();
    }

    #[test]
    fn validate_names_the_field() {
        let mut s = schedule();
        s.full_every = Duration::ZERO;
        assert_eq!(field(&s), "full_every");
        let mut s = schedule();
        s.delta_every = Duration::from_millis(500);
        assert_eq!(field(&s), "delta_every");
        let mut s = schedule();
        s.full_validity = Duration::from_secs(24 * H - 1);
        assert_eq!(field(&s), "full_validity");
        let mut s = schedule();
        s.delta_validity = Duration::from_secs(H - 1);
        assert_eq!(field(&s), "delta_validity");
        let mut s = schedule();
        s.full_validity = CrlSchedule::MAX_VALIDITY + Duration::from_secs(1);
        assert_eq!(field(&s), "full_validity");
        assert!(s.validate().unwrap_err().to_string().contains("30 days"));
        let mut s = schedule();
        s.delta_every = s.full_every;
        s.delta_validity = s.full_validity;
        assert_eq!(field(&s), "delta_every");
        let mut s = schedule();
        s.full_every = Duration::MAX;
        assert_eq!(field(&s), "full_every");
    }

    #[test]
    fn first_a_full_then_its_delta() {
        let s = schedule();
        let t = 1_795_305_600;
        assert_eq!(due(&s, t, None, None), Some(CrlType::Full));
        // A delta left from before is irrelevant without a full CRL.
        assert_eq!(due(&s, t, None, Some(t)), Some(CrlType::Full));
        assert_eq!(due(&s, t, Some(t), None), Some(CrlType::Delta));
        // The previous delta predates the new full CRL: a new one, based on it, is due now.
        assert_eq!(due(&s, t, Some(t), Some(t - 1)), Some(CrlType::Delta));
        assert_eq!(due(&s, t, Some(t), Some(t)), None);
    }

    #[test]
    fn intervals_are_inclusive_and_full_wins() {
        let s = schedule();
        let full = 1_795_305_600;
        let h = H as i64;
        assert_eq!(due(&s, full + h - 1, Some(full), Some(full)), None);
        assert_eq!(
            due(&s, full + h, Some(full), Some(full)),
            Some(CrlType::Delta)
        );
        assert_eq!(
            due(&s, full + 24 * h - 1, Some(full), Some(full + 23 * h)),
            None
        );
        // Both are due at the day mark: the full CRL comes first.
        assert_eq!(
            due(&s, full + 24 * h, Some(full), Some(full + 23 * h)),
            Some(CrlType::Full)
        );
    }

    #[test]
    fn a_clock_gone_back_makes_the_crl_due() {
        let s = schedule();
        let t = 1_795_305_600;
        assert_eq!(due(&s, t, Some(t + 10), Some(t + 10)), Some(CrlType::Full));
        assert_eq!(due(&s, t, Some(t), Some(t + 10)), Some(CrlType::Delta));
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        let s = schedule();
        assert_eq!(due(&s, i64::MAX, Some(i64::MIN), None), Some(CrlType::Full));
        assert_eq!(due(&s, i64::MIN, Some(i64::MIN), Some(i64::MIN)), None);
        assert_eq!(next_update(&s, CrlType::Full, i64::MAX), i64::MAX);
        assert_eq!(next_due_at(&s, Some(i64::MAX), Some(i64::MAX)), i64::MAX);
    }

    #[test]
    fn next_due_at_agrees_with_due() {
        let s = schedule();
        let full = 1_795_305_600;
        let h = H as i64;
        assert_eq!(next_due_at(&s, None, None), i64::MIN);
        assert_eq!(next_due_at(&s, Some(full), None), i64::MIN);
        assert_eq!(next_due_at(&s, Some(full), Some(full - 5)), i64::MIN);
        let at = next_due_at(&s, Some(full), Some(full + 2 * h));
        assert_eq!(at, full + 3 * h);
        assert_eq!(due(&s, at - 1, Some(full), Some(full + 2 * h)), None);
        assert!(due(&s, at, Some(full), Some(full + 2 * h)).is_some());
        let late_delta = full + 23 * h + 30 * 60;
        assert_eq!(next_due_at(&s, Some(full), Some(late_delta)), full + 24 * h);
    }

    #[test]
    fn next_update_uses_the_kind_s_validity() {
        let s = schedule();
        assert_eq!(
            next_update(&s, CrlType::Full, 1000),
            1000 + 7 * 24 * H as i64
        );
        assert_eq!(next_update(&s, CrlType::Delta, 1000), 1000 + 4 * H as i64);
    }
}
