//! Which counters a moment falls in.
//!
//! Calendar windows are exact: one counter per day, ISO week or month, from local midnight to the
//! next in the policy's time zone (a day is 23 or 25 hours across a DST change; where midnight
//! does not exist, the day starts at the first instant that does).
//!
//! Rolling windows of N seconds are bucketed: buckets of B = ⌈N/4⌉ seconds, and one counter per
//! five consecutive buckets (spanning 5B ≥ N + B), started at every bucket. A payment in bucket
//! b is counted in the five counters that contain b, so any N consecutive seconds (at most five
//! buckets) lie in one counter whose condition held for every payment in it: no N-second span
//! ever holds more than the limit. The price is caution: a payment is refused when the spend of
//! the last 5B seconds (5⌈N/4⌉ seconds, at most N + N/4 + 4) would exceed the limit.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};

use super::BudgetWindow;

/// Buckets per rolling window: a rolling budget is five counters per payment.
pub const ROLLING_BUCKETS: u64 = 4;

/// One counter a moment falls in: its window and the epoch seconds it covers, `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// The window kind.
    pub window: BudgetWindow,
    /// The first second the counter covers.
    pub start: u64,
    /// The first second it no longer covers.
    pub end: u64,
}

impl Slot {
    /// The counter's sort key: `<window>#<start>`.
    pub fn sort_key(&self) -> String {
        format!("{}#{}", self.window.id(), self.start)
    }
}

/// The counters `now` (epoch seconds) falls in for `window` in `tz`; `None` when the moment is
/// outside the calendar jiff represents (years -9999 to 9999) or its window starts before 1970
/// (only the first days of 1970, in zones east of UTC).
pub fn slots(window: BudgetWindow, tz: &TimeZone, now: u64) -> Option<Vec<Slot>> {
    let calendar = |start: Date, end: Date| -> Option<Vec<Slot>> {
        let start = midnight(start, tz)?;
        let end = midnight(end, tz)?;
        Some(vec![Slot { window, start, end }])
    };
    match window {
        BudgetWindow::Rolling(seconds) => {
            let bucket = seconds.div_ceil(ROLLING_BUCKETS).max(1);
            let b = now / bucket;
            Some(
                (b.saturating_sub(ROLLING_BUCKETS)..=b)
                    .map(|j| Slot {
                        window,
                        start: j * bucket,
                        end: (j + ROLLING_BUCKETS + 1) * bucket,
                    })
                    .collect(),
            )
        }
        calendar_window => {
            let local = Timestamp::from_second(i64::try_from(now).ok()?)
                .ok()?
                .to_zoned_datetime(tz.clone())
                .date();
            match calendar_window {
                BudgetWindow::Day => calendar(local, local.tomorrow().ok()?),
                BudgetWindow::Week => {
                    let back = i64::from(local.weekday().to_monday_zero_offset());
                    let monday = local.checked_sub(Span::new().days(back)).ok()?;
                    calendar(monday, monday.checked_add(Span::new().days(7)).ok()?)
                }
                _ => {
                    let first = local.first_of_month();
                    calendar(first, first.checked_add(Span::new().months(1)).ok()?)
                }
            }
        }
    }
}

/// The first instant of `date` in `tz`, epoch seconds.
fn midnight(date: Date, tz: &TimeZone) -> Option<u64> {
    let instant = date
        .to_zoned_datetime(tz.clone())
        .ok()?
        .start_of_day()
        .ok()?;
    u64::try_from(instant.timestamp().as_second()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::ROLLING_SECONDS_MIN;
    use proptest::prelude::*;

    fn tz(name: &str) -> TimeZone {
        jiff::tz::db().get(name).unwrap()
    }

    fn at(text: &str) -> u64 {
        text.parse::<Timestamp>().unwrap().as_second() as u64
    }

    fn one(window: BudgetWindow, zone: &str, now: &str) -> (u64, u64) {
        let s = slots(window, &tz(zone), at(now)).unwrap();
        assert_eq!(s.len(), 1);
        (s[0].start, s[0].end)
    }

    #[test]
    fn a_day_is_local_midnight_to_midnight() {
        // 2026-12-02 00:30 in Paris is still 2026-12-01 in UTC.
        assert_eq!(
            one(BudgetWindow::Day, "Europe/Paris", "2026-12-01T23:30:00Z"),
            (at("2026-12-01T23:00:00Z"), at("2026-12-02T23:00:00Z"))
        );
        assert_eq!(
            one(BudgetWindow::Day, "UTC", "2026-12-01T23:30:00Z"),
            (at("2026-12-01T00:00:00Z"), at("2026-12-02T00:00:00Z"))
        );
    }

    #[test]
    fn days_across_dst_changes_are_23_and_25_hours() {
        // Europe/Paris: 2026-03-29 springs forward, 2026-10-25 falls back.
        let (s, e) = one(BudgetWindow::Day, "Europe/Paris", "2026-03-29T12:00:00Z");
        assert_eq!(e - s, 23 * 3600);
        let (s, e) = one(BudgetWindow::Day, "Europe/Paris", "2026-10-25T12:00:00Z");
        assert_eq!(e - s, 25 * 3600);
    }

    #[test]
    fn a_day_whose_midnight_does_not_exist_starts_at_its_first_instant() {
        // America/Santiago springs forward at 00:00 on 2026-09-06: the day starts at 01:00 local.
        let (s, e) = one(
            BudgetWindow::Day,
            "America/Santiago",
            "2026-09-06T15:00:00Z",
        );
        assert_eq!(s, at("2026-09-06T04:00:00Z"));
        assert_eq!(e - s, 23 * 3600);
    }

    #[test]
    fn a_week_starts_on_monday_and_a_month_on_the_first() {
        // 2026-12-02 is a Wednesday.
        assert_eq!(
            one(BudgetWindow::Week, "UTC", "2026-12-02T10:00:00Z"),
            (at("2026-11-30T00:00:00Z"), at("2026-12-07T00:00:00Z"))
        );
        assert_eq!(
            one(BudgetWindow::Month, "Asia/Tokyo", "2026-11-30T16:00:00Z"),
            (at("2026-11-30T15:00:00Z"), at("2026-12-31T15:00:00Z"))
        );
        assert_eq!(
            one(BudgetWindow::Month, "UTC", "2028-02-10T00:00:00Z"),
            (at("2028-02-01T00:00:00Z"), at("2028-03-01T00:00:00Z"))
        );
    }

    #[test]
    fn a_rolling_window_is_five_overlapping_counters_of_quarter_buckets() {
        let s = slots(BudgetWindow::Rolling(3600), &TimeZone::UTC, 10_000).unwrap();
        // B = 900; 10 000 is in bucket 11.
        let starts: Vec<u64> = s.iter().map(|x| x.start).collect();
        assert_eq!(starts, [6300, 7200, 8100, 9000, 9900]);
        assert!(s
            .iter()
            .all(|x| x.end - x.start == 4500 && x.start <= 10_000 && 10_000 < x.end));
        assert_eq!(s[0].sort_key(), "rolling3600#6300");
    }

    proptest! {
        /// Every N-second span lies within one counter holding every moment of it, so the
        /// counter's condition bounds the span's spend.
        #[test]
        fn any_n_second_span_lies_in_one_counter_that_every_moment_of_it_charges(
            n in ROLLING_SECONDS_MIN..=100_000u64,
            a in 1_000_000u64..2_000_000_000,
        ) {
            let window = BudgetWindow::Rolling(n);
            let first = slots(window, &TimeZone::UTC, a).unwrap();
            let last = slots(window, &TimeZone::UTC, a + n - 1).unwrap();
            let common: Vec<&Slot> = first.iter().filter(|s| last.contains(s)).collect();
            prop_assert!(!common.is_empty());
            // Counters are intervals, so a counter holding both ends holds every moment between.
            prop_assert!(common.iter().all(|s| s.start <= a && a + n <= s.end));
        }

        /// Calendar slots always hold the moment asked about, in any zone.
        #[test]
        fn a_calendar_slot_holds_its_moment(
            now in 100_000_000u64..4_000_000_000,
            zone in prop::sample::select(vec!["UTC", "Europe/Paris", "America/Santiago", "Australia/Lord_Howe", "Pacific/Kiritimati", "America/St_Johns"]),
            w in prop::sample::select(vec![BudgetWindow::Day, BudgetWindow::Week, BudgetWindow::Month]),
        ) {
            let s = slots(w, &tz(zone), now).unwrap();
            prop_assert_eq!(s.len(), 1);
            prop_assert!(s[0].start <= now && now < s[0].end, "{:?}", s[0]);
        }
    }
}
