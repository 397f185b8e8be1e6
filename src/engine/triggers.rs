//! The time patterns of Karbor's `time` triggers, checked and read: a crontab line
//! (`format=crontab`, five fields, as Karbor's croniter took them) or an iCalendar VEVENT
//! with one or more RRULEs (`format=calendar`, read by the `rrule` crate; Karbor used
//! python-dateutil's rrule the same way).
//!
//! Karbor's limits are kept as fixed values (Karbor made them settings of its operation
//! engine, with these defaults): two adjacent times of a pattern are at least
//! [`MIN_INTERVAL_SECONDS`] apart, and a trigger's window is between
//! [`MIN_WINDOW_SECONDS`] and [`MAX_WINDOW_SECONDS`]. Where Karbor looked at the first two
//! times after now only, the first [`TIMES_CHECKED`] times are looked at here, so that a
//! pattern such as `0 0,1 * * *` is refused whatever the hour it is sent at.

use chrono::{DateTime, Utc};

use super::plans::Schedule;
use crate::model::TimeFormat;

/// The least number of seconds between two adjacent times of a pattern (Karbor's
/// `min_interval` default).
pub const MIN_INTERVAL_SECONDS: i64 = 3600;
/// The least window, in seconds (Karbor's `min_window_time` default); also the window of a
/// trigger that names none.
pub const MIN_WINDOW_SECONDS: u32 = 900;
/// The greatest window, in seconds (Karbor's `max_window_time` default).
pub const MAX_WINDOW_SECONDS: u32 = 1800;
/// How many adjacent times are compared with [`MIN_INTERVAL_SECONDS`].
pub const TIMES_CHECKED: u16 = 32;

/// A pattern refused, with Karbor's wording where Karbor had one.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct PatternError(pub String);

#[derive(Clone)]
enum Rule {
    Crontab(Schedule),
    Calendar(rrule::RRuleSet),
}

/// A checked pattern: the times it names from its start on.
#[derive(Clone)]
pub struct TimePattern {
    rule: Rule,
}

impl std::fmt::Debug for TimePattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.rule {
            Rule::Crontab(s) => f.debug_tuple("Crontab").field(&s.as_str()).finish(),
            Rule::Calendar(r) => f.debug_tuple("Calendar").field(&r.to_string()).finish(),
        }
    }
}

/// A calendar pattern as karborclient sends it: a line break may be written `\n` (two
/// characters), as Karbor decoded it.
fn calendar_lines(pattern: &str) -> Vec<String> {
    pattern
        .replace("\\r\\n", "\n")
        .replace("\\n", "\n")
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// `NAME:value` (a property may have parameters: `NAME;X=Y:value`) as the upper-case name
/// and the value.
fn property(line: &str) -> Option<(String, &str)> {
    let (head, value) = line.split_once(':')?;
    let name = head.split(';').next().unwrap_or(head).to_ascii_uppercase();
    Some((name, value))
}

fn calendar(pattern: &str, start: DateTime<Utc>) -> Result<rrule::RRuleSet, PatternError> {
    let invalid =
        |why: &str| PatternError(format!("The trigger pattern({pattern}) is invalid: {why}"));
    let lines = calendar_lines(pattern);
    let begin = lines
        .iter()
        .position(|l| l.eq_ignore_ascii_case("BEGIN:VEVENT"))
        .ok_or_else(|| {
            PatternError(format!(
                "The trigger pattern({pattern}) must include a VEVENT component \
                 (BEGIN:VEVENT ... END:VEVENT)"
            ))
        })?;
    let end = lines[begin..]
        .iter()
        .position(|l| l.eq_ignore_ascii_case("END:VEVENT"))
        .map(|i| begin + i)
        .ok_or_else(|| invalid("BEGIN:VEVENT has no END:VEVENT"))?;
    let dtstart = start.with_timezone(&rrule::Tz::UTC);
    let mut set = rrule::RRuleSet::new(dtstart);
    let mut rules = 0;
    for line in &lines[begin + 1..end] {
        let (name, value) =
            property(line).ok_or_else(|| invalid(&format!("{line:?} is no NAME:value line")))?;
        if name != "RRULE" {
            continue;
        }
        // Karbor's example ends the rule with `;`: empty parts are dropped.
        let parts: Vec<&str> = value
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        let text = parts.join(";");
        let unvalidated: rrule::RRule<rrule::Unvalidated> = text
            .parse()
            .map_err(|e| invalid(&format!("RRULE:{text}: {e}")))?;
        let rule = unvalidated
            .validate(dtstart)
            .map_err(|e| invalid(&format!("RRULE:{text}: {e}")))?;
        set = set.rrule(rule);
        rules += 1;
    }
    if rules == 0 {
        return Err(PatternError(format!(
            "The first VEVENT component of trigger pattern({pattern}) must include an RRULE \
             property"
        )));
    }
    Ok(set)
}

fn crontab(pattern: &str) -> Result<Schedule, PatternError> {
    if pattern.trim().is_empty() {
        return Err(PatternError("The trigger pattern is None".into()));
    }
    let fields = pattern.split_whitespace().count();
    if fields != 5 {
        return Err(PatternError(format!(
            "The trigger pattern({pattern}) is invalid: a crontab pattern has 5 fields \
             (minute hour day-of-month month day-of-week), not {fields}"
        )));
    }
    Schedule::parse(pattern)
        .map_err(|e| PatternError(format!("The trigger pattern({pattern}) is invalid: {e}")))
}

impl TimePattern {
    /// Parses `pattern`, written in `format`, for times from `start` on; a pattern that
    /// does not parse, or names no time at all, is refused.
    pub fn parse(
        format: TimeFormat,
        pattern: &str,
        start: DateTime<Utc>,
    ) -> Result<TimePattern, PatternError> {
        let rule = match format {
            TimeFormat::Crontab => Rule::Crontab(crontab(pattern)?),
            TimeFormat::Calendar => Rule::Calendar(calendar(pattern, start)?),
        };
        Ok(TimePattern { rule })
    }

    /// Up to `n` times strictly after `t`, in order.
    pub fn times_after(&self, t: DateTime<Utc>, n: u16) -> Vec<DateTime<Utc>> {
        match &self.rule {
            Rule::Crontab(s) => {
                let mut out = Vec::with_capacity(usize::from(n));
                let mut at = t;
                while out.len() < usize::from(n) {
                    match s.next_after(at) {
                        Some(next) => {
                            out.push(next);
                            at = next;
                        }
                        None => break,
                    }
                }
                out
            }
            Rule::Calendar(set) => set
                .clone()
                .after(t.with_timezone(&rrule::Tz::UTC))
                // `after` takes `t` itself too: one more is asked for.
                .all(n.saturating_add(1))
                .dates
                .into_iter()
                .map(|d| d.with_timezone(&Utc))
                .filter(|d| *d > t)
                .take(usize::from(n))
                .collect(),
        }
    }

    /// Checks the times the pattern names between `start` and `end`, from `now` on: there
    /// is at least one, and adjacent ones are [`MIN_INTERVAL_SECONDS`] apart or more.
    pub fn check_times(
        &self,
        start: DateTime<Utc>,
        end: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), PatternError> {
        // The first time may be `start` itself.
        let from = start.max(now) - chrono::TimeDelta::seconds(1);
        let times: Vec<DateTime<Utc>> = self
            .times_after(from, TIMES_CHECKED)
            .into_iter()
            .take_while(|t| end.is_none_or(|e| *t <= e))
            .collect();
        if times.is_empty() {
            return Err(PatternError(match end {
                Some(e) => format!(
                    "The trigger pattern names no time between {} and its end_time {}",
                    fmt_time(start.max(now)),
                    fmt_time(e)
                ),
                None => format!(
                    "The trigger pattern never fires after {}",
                    fmt_time(start.max(now))
                ),
            }));
        }
        let shortest = times.windows(2).map(|w| (w[1] - w[0]).num_seconds()).min();
        if let Some(s) = shortest {
            if s < MIN_INTERVAL_SECONDS {
                return Err(PatternError(format!(
                    "The interval of two adjacent time points is less than \
                     {MIN_INTERVAL_SECONDS} (it is {s} seconds)"
                )));
            }
        }
        Ok(())
    }
}

/// A time as Karbor writes and reads a trigger's start and end: `2026-01-31 08:30:00` (UTC).
pub fn fmt_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A trigger's start or end time: `2026-01-31 08:30:00` as Karbor takes it, or with a `T`,
/// or RFC 3339; without an offset it is UTC. Whole seconds are kept.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return t.with_timezone(&Utc).with_nanosecond_zero();
    }
    [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
    ]
    .iter()
    .find_map(|f| chrono::NaiveDateTime::parse_from_str(s, f).ok())
    .and_then(|n| n.and_utc().with_nanosecond_zero())
}

trait WholeSeconds: Sized {
    fn with_nanosecond_zero(self) -> Option<Self>;
}

impl WholeSeconds for DateTime<Utc> {
    fn with_nanosecond_zero(self) -> Option<Self> {
        chrono::Timelike::with_nanosecond(&self, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        parse_time(s).unwrap()
    }

    const HOURLY: &str = "BEGIN:VEVENT\\nRRULE:FREQ=HOURLY;INTERVAL=1;\\nEND:VEVENT";

    #[test]
    fn karbors_hourly_calendar_example_fires_every_hour() {
        let start = at("2026-01-01 00:00:00");
        let p = TimePattern::parse(TimeFormat::Calendar, HOURLY, start).unwrap();
        let times = p.times_after(start, 3);
        assert_eq!(
            times,
            vec![
                at("2026-01-01 01:00:00"),
                at("2026-01-01 02:00:00"),
                at("2026-01-01 03:00:00")
            ]
        );
        p.check_times(start, None, start).unwrap();
    }

    #[test]
    fn calendar_patterns_that_are_refused() {
        let start = at("2026-01-01 00:00:00");
        for (pattern, says) in [
            ("RRULE:FREQ=DAILY", "must include a VEVENT"),
            ("BEGIN:VEVENT\nRRULE:FREQ=DAILY", "no END:VEVENT"),
            (
                "BEGIN:VEVENT\nSUMMARY:x\nEND:VEVENT",
                "must include an RRULE",
            ),
            (
                "BEGIN:VEVENT\nRRULE:FREQ=SOMETIMES\nEND:VEVENT",
                "is invalid",
            ),
            ("BEGIN:VEVENT\nRRULE:INTERVAL=2\nEND:VEVENT", "is invalid"),
        ] {
            let e = TimePattern::parse(TimeFormat::Calendar, pattern, start).unwrap_err();
            assert!(e.0.contains(says), "{pattern}: {e}");
        }
        // Every 30 minutes is too often; 30 February never comes.
        let often = TimePattern::parse(
            TimeFormat::Calendar,
            "BEGIN:VEVENT\nRRULE:FREQ=MINUTELY;INTERVAL=30\nEND:VEVENT",
            start,
        )
        .unwrap();
        let e = often.check_times(start, None, start).unwrap_err();
        assert!(e.0.contains("less than 3600"), "{e}");
        let never = TimePattern::parse(
            TimeFormat::Calendar,
            "BEGIN:VEVENT\nRRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30\nEND:VEVENT",
            start,
        );
        match never {
            Err(e) => assert!(e.0.contains("invalid"), "{e}"),
            Ok(p) => assert!(p.check_times(start, None, start).is_err()),
        }
    }

    #[test]
    fn crontab_patterns() {
        let start = at("2026-01-01 00:00:00");
        let p = TimePattern::parse(TimeFormat::Crontab, "0 */2 * * *", start).unwrap();
        p.check_times(start, None, start).unwrap();
        assert_eq!(p.times_after(start, 1), vec![at("2026-01-01 02:00:00")]);
        for (pattern, says) in [
            ("0 0 30 2 *", "never fires"),
            ("*/10 * * * *", ""),
            ("0 0 * *", "5 fields"),
            ("0 0 0 * * *", "5 fields"),
            ("0 25 * * *", "not a cron expression"),
            ("", "None"),
        ] {
            let e = match TimePattern::parse(TimeFormat::Crontab, pattern, start) {
                Err(e) => e,
                Ok(p) => p.check_times(start, None, start).unwrap_err(),
            };
            assert!(e.0.contains(says), "{pattern}: {e}");
        }
        // Hourly at minute 0 and 30 of the first hour only: refused whatever the time now.
        let p = TimePattern::parse(TimeFormat::Crontab, "0,30 3 * * *", start).unwrap();
        assert!(p.check_times(start, None, start).is_err());
        // An end before the first time.
        let p = TimePattern::parse(TimeFormat::Crontab, "0 5 * * *", start).unwrap();
        let e = p
            .check_times(start, Some(at("2026-01-01 04:00:00")), start)
            .unwrap_err();
        assert!(e.0.contains("names no time"), "{e}");
    }

    #[test]
    fn times_are_read_as_karbor_wrote_them() {
        assert_eq!(fmt_time(at("2026-01-31 08:30:00")), "2026-01-31 08:30:00");
        assert_eq!(at("2026-01-31T08:30:00"), at("2026-01-31 08:30:00"));
        assert_eq!(at("2026-01-31T09:30:00+01:00"), at("2026-01-31 08:30:00"));
        assert!(parse_time("tomorrow").is_none());
    }
}
