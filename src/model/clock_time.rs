//! A clock time the crew types ("23:55") placed on the right day, in a given time zone.
//!
//! Crews type times as HH:MM; the date is implied. The rules, so a set typed "23:55" just
//! after midnight is yesterday's and never about 24 hours in the future:
//! - A time of something that has happened ([`Expect::Past`]: milestones, observations,
//!   drugs, interventions) is its most recent occurrence at or before now, and must lie
//!   within the last [`PAST_WINDOW_HOURS`] hours. A time later than now is refused: it is in
//!   the future (or more than 12 hours ago, which a typed clock time cannot say).
//! - A time that may lie either side of a reference ([`Expect::Nearest`]: an ETA, or a
//!   correction to an earlier set's time) is the occurrence nearest the reference, within
//!   12 hours either way.
//! - In the autumn the hour before the clocks go back happens twice: such a time is
//!   [`ClockTimeError::Ambiguous`] until the crew says which, by a "(1st)" or "(2nd)" after
//!   it (the app offers both as buttons). In the spring the hour the clocks skip never
//!   happened: [`ClockTimeError::Skipped`] says so.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};

/// How far back a typed time of something that happened may reach.
pub const PAST_WINDOW_HOURS: i64 = 12;

/// Slack for "now": a time typed from a clock showing the current minute is not "future".
const NOW_GRACE_SECONDS: i64 = 60;

/// Which occurrence of a typed clock time is meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Something that has happened: at or before the reference.
    Past,
    /// Either side of the reference, whichever is nearer.
    Nearest,
}

/// Why typed text did not become a time. Messages name the rule, not the text typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockTimeError {
    /// Not HH:MM.
    Format,
    /// Later than now (or, the same thing for a clock time, more than 12 hours ago).
    Future,
    /// The clocks went back: this time happened twice. Both, in order.
    Ambiguous {
        first: DateTime<Utc>,
        second: DateTime<Utc>,
    },
    /// The clocks went forward: this time did not happen.
    Skipped,
}

impl ClockTimeError {
    /// The message shown beside the field.
    pub fn message(&self) -> &'static str {
        match self {
            ClockTimeError::Format => "Enter the time as HH:MM (24-hour clock)",
            ClockTimeError::Future => {
                "That time is later than now: a time cannot be in the future \
                 (or more than 12 hours ago)"
            }
            ClockTimeError::Ambiguous { .. } => {
                "The clocks went back: that time happened twice. Choose which"
            }
            ClockTimeError::Skipped => {
                "The clocks went forward: that time did not happen. Check the time"
            }
        }
    }
}

impl std::fmt::Display for ClockTimeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for ClockTimeError {}

/// Which of a repeated hour's two occurrences the crew chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occurrence {
    First,
    Second,
}

impl Occurrence {
    /// The suffix typed (or put there by the app's button) after the time.
    pub fn suffix(self) -> &'static str {
        match self {
            Occurrence::First => "(1st)",
            Occurrence::Second => "(2nd)",
        }
    }
}

/// Reads "14:05", "1405" or "9:05", optionally followed by "(1st)" or "(2nd)".
pub fn parse_hhmm(text: &str) -> Result<(NaiveTime, Option<Occurrence>), ClockTimeError> {
    let mut t = text.trim();
    let mut occurrence = None;
    for o in [Occurrence::First, Occurrence::Second] {
        if let Some(rest) = t.strip_suffix(o.suffix()) {
            t = rest.trim_end();
            occurrence = Some(o);
        }
    }
    let time = NaiveTime::parse_from_str(t, "%H:%M")
        .ok()
        .or_else(|| {
            let digits = t.len() == 4 && t.chars().all(|c| c.is_ascii_digit());
            digits
                .then(|| {
                    NaiveTime::parse_from_str(&format!("{}:{}", &t[..2], &t[2..]), "%H:%M").ok()
                })
                .flatten()
        })
        .ok_or(ClockTimeError::Format)?;
    Ok((time, occurrence))
}

/// Places a typed clock time in `tz` relative to `reference` (normally now). See the module
/// notes for the rules.
pub fn resolve<Tz: TimeZone>(
    text: &str,
    reference: DateTime<Utc>,
    tz: &Tz,
    expect: Expect,
) -> Result<DateTime<Utc>, ClockTimeError> {
    let (time, chosen) = parse_hhmm(text)?;
    let today = reference.with_timezone(tz).date_naive();
    let window = Duration::hours(PAST_WINDOW_HOURS);
    let grace = Duration::seconds(NOW_GRACE_SECONDS);
    let (earliest, latest) = match expect {
        Expect::Past => (reference - window, reference + grace),
        Expect::Nearest => (reference - window, reference + window),
    };

    // Every instant the typed time names on the days around the reference, grouped by day.
    let mut in_window: Vec<Vec<DateTime<Utc>>> = Vec::new();
    let mut skipped = false;
    for offset in [-1i64, 0, 1] {
        let Some(day) = shift(today, offset) else {
            continue;
        };
        let instants: Vec<DateTime<Utc>> = match tz.from_local_datetime(&day.and_time(time)) {
            LocalResult::Single(t) => vec![t.with_timezone(&Utc)],
            LocalResult::Ambiguous(a, b) => {
                let (a, b) = (a.with_timezone(&Utc), b.with_timezone(&Utc));
                if a <= b { vec![a, b] } else { vec![b, a] }
            }
            LocalResult::None => {
                // The skipped hour counts only where that day's time would have been a
                // candidate: an hour either side of it lies inside the window.
                let near = tz
                    .from_local_datetime(&day.and_time(time - Duration::hours(1)))
                    .earliest()
                    .map(|t| t.with_timezone(&Utc));
                if near.is_some_and(|t| t >= earliest - Duration::hours(1) && t <= latest) {
                    skipped = true;
                }
                vec![]
            }
        };
        let inside: Vec<_> = instants
            .into_iter()
            .filter(|t| *t >= earliest && *t <= latest)
            .collect();
        if !inside.is_empty() {
            in_window.push(inside);
        }
    }

    let distance = |t: &DateTime<Utc>| (*t - reference).num_seconds().abs();
    let best_day = match expect {
        // The most recent day with an occurrence at or before now.
        Expect::Past => in_window.last(),
        Expect::Nearest => in_window
            .iter()
            .min_by_key(|day| day.iter().map(distance).min().unwrap_or(i64::MAX)),
    };
    let Some(day) = best_day else {
        return Err(if skipped {
            ClockTimeError::Skipped
        } else {
            ClockTimeError::Future
        });
    };
    match (day.as_slice(), chosen) {
        ([only], _) => Ok(*only),
        ([first, _], Some(Occurrence::First)) => Ok(*first),
        ([_, second], Some(Occurrence::Second)) => Ok(*second),
        ([first, second], None) => Err(ClockTimeError::Ambiguous {
            first: *first,
            second: *second,
        }),
        _ => Err(ClockTimeError::Format),
    }
}

fn shift(day: NaiveDate, days: i64) -> Option<NaiveDate> {
    day.checked_add_signed(Duration::days(days))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::London;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).single().unwrap()
    }

    #[test]
    fn typed_times_are_placed_on_the_right_day() {
        use ClockTimeError::*;
        // (now UTC, typed, expect, result). Winter: London is UTC+0; summer: UTC+1.
        type Case = (
            DateTime<Utc>,
            &'static str,
            Expect,
            Result<DateTime<Utc>, ClockTimeError>,
        );
        let cases: &[Case] = &[
            // "23:55" just after midnight is yesterday's, never ~24 h ahead.
            (
                utc(2026, 12, 2, 0, 5),
                "23:55",
                Expect::Past,
                Ok(utc(2026, 12, 1, 23, 55)),
            ),
            (
                utc(2026, 12, 2, 0, 5),
                "2355",
                Expect::Past,
                Ok(utc(2026, 12, 1, 23, 55)),
            ),
            (
                utc(2026, 12, 2, 10, 0),
                "09:00",
                Expect::Past,
                Ok(utc(2026, 12, 2, 9, 0)),
            ),
            (
                utc(2026, 12, 2, 10, 0),
                "10:00",
                Expect::Past,
                Ok(utc(2026, 12, 2, 10, 0)),
            ),
            // Within a minute of now is now, not the future.
            (
                utc(2026, 12, 2, 10, 0),
                "10:01",
                Expect::Past,
                Ok(utc(2026, 12, 2, 10, 1)),
            ),
            (utc(2026, 12, 2, 10, 0), "10:30", Expect::Past, Err(Future)),
            // 11.5 h ago is yesterday; 13 h ago cannot be typed as a clock time.
            (
                utc(2026, 12, 2, 10, 0),
                "22:30",
                Expect::Past,
                Ok(utc(2026, 12, 1, 22, 30)),
            ),
            (utc(2026, 12, 2, 10, 0), "21:00", Expect::Past, Err(Future)),
            // Summer time: local 14:05 is 13:05 UTC.
            (
                utc(2026, 7, 1, 13, 30),
                "14:05",
                Expect::Past,
                Ok(utc(2026, 7, 1, 13, 5)),
            ),
            // 00:10 BST on 2 July is 23:10 UTC on 1 July; "23:55" is 23:55 BST on 1 July.
            (
                utc(2026, 7, 1, 23, 10),
                "23:55",
                Expect::Past,
                Ok(utc(2026, 7, 1, 22, 55)),
            ),
            // An ETA just after midnight, typed before it, is tomorrow's.
            (
                utc(2026, 12, 1, 23, 50),
                "00:10",
                Expect::Nearest,
                Ok(utc(2026, 12, 2, 0, 10)),
            ),
            (
                utc(2026, 12, 2, 10, 0),
                "09:50",
                Expect::Nearest,
                Ok(utc(2026, 12, 2, 9, 50)),
            ),
            (utc(2026, 12, 2, 10, 0), "25:00", Expect::Past, Err(Format)),
            (utc(2026, 12, 2, 10, 0), "soon", Expect::Past, Err(Format)),
            (utc(2026, 12, 2, 10, 0), "", Expect::Past, Err(Format)),
        ];
        for (now, typed, expect, want) in cases {
            assert_eq!(
                resolve(typed, *now, &London, *expect),
                *want,
                "{typed} at {now}"
            );
        }
    }

    #[test]
    fn the_repeated_october_hour_asks_which_one() {
        // 25 October 2026: at 02:00 BST the clocks go back to 01:00 GMT, so local 01:30 is
        // both 00:30 UTC (BST) and 01:30 UTC (GMT).
        let now = utc(2026, 10, 25, 3, 0);
        let (first, second) = (utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30));
        assert_eq!(
            resolve("01:30", now, &London, Expect::Past),
            Err(ClockTimeError::Ambiguous { first, second })
        );
        assert_eq!(
            resolve("01:30 (1st)", now, &London, Expect::Past),
            Ok(first)
        );
        assert_eq!(
            resolve("01:30 (2nd)", now, &London, Expect::Past),
            Ok(second)
        );
        // Before the second 01:30 has come, only the first is in the past.
        let during = utc(2026, 10, 25, 1, 0);
        assert_eq!(resolve("01:30", during, &London, Expect::Past), Ok(first));
        // An hour that happened once is not ambiguous.
        assert_eq!(
            resolve("02:30", now, &London, Expect::Past),
            Ok(utc(2026, 10, 25, 2, 30))
        );
    }

    #[test]
    fn the_missing_march_hour_says_so() {
        // 29 March 2026: at 01:00 GMT the clocks go forward to 02:00 BST; 01:30 never happened.
        let now = utc(2026, 3, 29, 2, 0);
        assert_eq!(
            resolve("01:30", now, &London, Expect::Past),
            Err(ClockTimeError::Skipped)
        );
        assert_eq!(
            resolve("00:30", now, &London, Expect::Past),
            Ok(utc(2026, 3, 29, 0, 30))
        );
        assert_eq!(
            resolve("02:30", now, &London, Expect::Past),
            Ok(utc(2026, 3, 29, 1, 30))
        );
        assert_eq!(
            resolve("03:30", now, &London, Expect::Past),
            Err(ClockTimeError::Future)
        );
    }
}
