//! Deployment windows and freezes: five-field cron expressions read in an IANA time zone.
//!
//! A window is the set of minutes its expression matches, as crontab(5) reads one:
//! `* 9-16 * * MON-FRI` is every minute from 09:00 to 16:59 on weekdays. When both the day of
//! month and the day of week are restricted, a day matching either is in (crontab's rule).
//!
//! Written here rather than taken from a crate: the cron crates on jiff (`croner`,
//! `jiff-cron`) build on jiff 0.2 while the rest of ferry is on jiff 1, and minute matching is
//! all a window needs; jiff does the time zones.

use std::fmt;

use jiff::tz::TimeZone;
use jiff::{Timestamp, civil};
use serde::{Deserialize, Serialize};

/// A parsed five-field cron expression: one bit per value of each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    /// Both day fields restricted: a day matching either is in.
    either_day: bool,
}

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
    },
    Field {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
    },
    Field {
        name: "day of month",
        min: 1,
        max: 31,
        names: &[],
    },
    Field {
        name: "month",
        min: 1,
        max: 12,
        names: &[
            "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
        ],
    },
    // 0 and 7 are both Sunday.
    Field {
        name: "day of week",
        min: 0,
        max: 7,
        names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
    },
];

impl Field {
    fn value(&self, text: &str) -> Result<u32, String> {
        let upper = text.to_ascii_uppercase();
        if let Some(i) = self.names.iter().position(|n| *n == upper) {
            // Month names count from 1, day names from 0 (Sunday).
            return Ok(u32::try_from(i).unwrap_or(0) + u32::from(self.min == 1));
        }
        let n: u32 = text.parse().map_err(|_| {
            let names = if self.names.is_empty() {
                String::new()
            } else {
                format!(
                    " or a name ({}–{})",
                    self.names[0],
                    self.names[self.names.len() - 1]
                )
            };
            format!(
                "`{text}` in the {} field is not a number from {} to {}{names}",
                self.name, self.min, self.max
            )
        })?;
        if n < self.min || n > self.max {
            return Err(format!(
                "{n} is out of range for the {} field ({} to {})",
                self.name, self.min, self.max
            ));
        }
        Ok(n)
    }

    /// `*`, `5`, `1-5`, `*/15`, `0-30/10`, `MON-FRI`, and comma lists of them.
    fn parse(&self, text: &str) -> Result<u64, String> {
        let mut bits = 0u64;
        for item in text.split(',') {
            let (range, step) = match item.split_once('/') {
                Some((range, step)) => {
                    let step: u32 = step.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                        format!(
                            "`{step}` after `/` in the {} field is not a step (a whole number of at least 1)",
                            self.name
                        )
                    })?;
                    (range, step)
                }
                None => (item, 1),
            };
            let (from, to) = match range {
                "*" => (self.min, self.max),
                r => match r.split_once('-') {
                    Some((a, b)) => (self.value(a)?, self.value(b)?),
                    // `5/10` runs from 5 to the end, as in crontab.
                    None if step > 1 => (self.value(r)?, self.max),
                    None => {
                        let v = self.value(r)?;
                        (v, v)
                    }
                },
            };
            if from > to {
                return Err(format!(
                    "`{range}` in the {} field runs backwards; write the lower bound first",
                    self.name
                ));
            }
            let mut v = from;
            while v <= to {
                bits |= 1 << v;
                v += step;
            }
        }
        Ok(bits)
    }
}

impl Cron {
    /// Reads `minute hour day-of-month month day-of-week`.
    pub fn parse(text: &str) -> Result<Cron, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "`{text}` has {} field(s); a window is five: minute, hour, day of month, month, day of week (`* 9-16 * * MON-FRI`)",
                fields.len()
            ));
        }
        let mut bits = [0u64; 5];
        for (i, (field, text)) in FIELDS.iter().zip(&fields).enumerate() {
            bits[i] = field.parse(text)?;
        }
        // Sunday is 0 and 7.
        if bits[4] & (1 << 7) != 0 {
            bits[4] |= 1;
        }
        Ok(Cron {
            minutes: bits[0],
            hours: bits[1],
            days: bits[2],
            months: bits[3],
            weekdays: bits[4],
            either_day: !fields[2].starts_with('*') && !fields[4].starts_with('*'),
        })
    }

    /// Whether the minute `t` (its seconds ignored) is one the expression names.
    pub fn matches(&self, t: civil::DateTime) -> bool {
        let has = |bits: u64, v: i8| v >= 0 && bits & (1 << v) != 0;
        let day = has(self.days, t.day());
        let weekday = has(self.weekdays, t.weekday().to_sunday_zero_offset());
        let day_ok = if self.either_day {
            day || weekday
        } else {
            day && weekday
        };
        day_ok
            && has(self.minutes, t.minute())
            && has(self.hours, t.hour())
            && has(self.months, t.month())
    }
}

/// Whether a window lets releases in or keeps them out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rule {
    Allow,
    Deny,
}

/// A deployment window (`allow`) or freeze (`deny`), compiled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "WindowSpec", into = "WindowSpec")]
pub struct Window {
    pub rule: Rule,
    /// The expression as written.
    pub cron: String,
    /// The IANA name it is read in.
    pub time_zone: String,
    compiled: Cron,
    zone: TimeZone,
}

/// A window as it is written and stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct WindowSpec {
    rule: Rule,
    cron: String,
    time_zone: String,
}

impl TryFrom<WindowSpec> for Window {
    type Error = String;
    fn try_from(s: WindowSpec) -> Result<Window, String> {
        Window::new(s.rule, &s.cron, &s.time_zone)
    }
}

impl From<Window> for WindowSpec {
    fn from(w: Window) -> WindowSpec {
        WindowSpec {
            rule: w.rule,
            cron: w.cron,
            time_zone: w.time_zone,
        }
    }
}

/// Reads an IANA time zone name (`Europe/Berlin`, `UTC`).
pub fn time_zone(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name).map_err(|_| {
        format!("`{name}` is not an IANA time zone; write it like `Europe/Berlin`, `America/New_York` or `UTC`")
    })
}

impl Window {
    pub fn new(rule: Rule, cron: &str, time_zone_name: &str) -> Result<Window, String> {
        Ok(Window {
            rule,
            cron: cron.to_owned(),
            time_zone: time_zone_name.to_owned(),
            compiled: Cron::parse(cron)?,
            zone: time_zone(time_zone_name)?,
        })
    }

    /// Whether the window covers the minute of `t`.
    pub fn covers(&self, t: Timestamp) -> bool {
        self.compiled.matches(self.zone.to_datetime(t))
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rule = match self.rule {
            Rule::Allow => "allow",
            Rule::Deny => "deny",
        };
        write!(f, "{rule} `{}` ({})", self.cron, self.time_zone)
    }
}

/// Why a set of windows keeps releases out at a moment.
#[derive(Debug, Clone, PartialEq)]
pub enum Closed<'a> {
    /// There are `allow` windows and none covers the moment.
    OutsideWindows,
    /// A freeze covers it.
    Frozen(&'a Window),
}

/// Whether `windows` keep releases out at `t`: a freeze covering it, or `allow` windows none
/// of which covers it.
pub fn closed_at(windows: &[Window], t: Timestamp) -> Option<Closed<'_>> {
    if let Some(freeze) = windows.iter().find(|w| w.rule == Rule::Deny && w.covers(t)) {
        return Some(Closed::Frozen(freeze));
    }
    let mut allows = windows.iter().filter(|w| w.rule == Rule::Allow).peekable();
    if allows.peek().is_some() && !allows.any(|w| w.covers(t)) {
        return Some(Closed::OutsideWindows);
    }
    None
}

/// How far ahead [`next_open`] looks.
pub const LOOKAHEAD_DAYS: i64 = 31;

/// The first minute after `t` at which `windows` let releases in, within
/// [`LOOKAHEAD_DAYS`]; `None` when they stay closed that long.
pub fn next_open(windows: &[Window], t: Timestamp) -> Option<Timestamp> {
    let start = t.as_second() - t.as_second().rem_euclid(60) + 60;
    (0..LOOKAHEAD_DAYS * 24 * 60)
        .filter_map(|m| Timestamp::from_second(start + m * 60).ok())
        .find(|&minute| closed_at(windows, minute).is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn fields_read_as_crontab_reads_them() {
        let c = Cron::parse("*/15 9-16 * * MON-FRI").unwrap();
        // 2026-12-02 is a Wednesday.
        let wed = civil::date(2026, 12, 2);
        assert!(c.matches(wed.at(9, 0, 0, 0)));
        assert!(c.matches(wed.at(16, 45, 0, 0)));
        assert!(!c.matches(wed.at(16, 50, 0, 0)));
        assert!(!c.matches(wed.at(17, 0, 0, 0)));
        assert!(
            !c.matches(civil::date(2026, 12, 5).at(10, 0, 0, 0)),
            "Saturday"
        );
        // Sunday is 0 and 7.
        let sunday = civil::date(2026, 12, 6).at(0, 0, 0, 0);
        assert!(Cron::parse("* * * * 7").unwrap().matches(sunday));
        assert!(Cron::parse("* * * * 0").unwrap().matches(sunday));
        // Both day fields restricted: either matches (the 1st, or any Friday).
        let c = Cron::parse("* * 1 * FRI").unwrap();
        assert!(c.matches(civil::date(2026, 12, 1).at(0, 0, 0, 0)));
        assert!(c.matches(civil::date(2026, 12, 4).at(0, 0, 0, 0)));
        assert!(!c.matches(civil::date(2026, 12, 3).at(0, 0, 0, 0)));
        // `5/20` runs from 5 to the end of the field.
        let c = Cron::parse("5/20 * * dec *").unwrap();
        assert!(c.matches(wed.at(3, 45, 0, 0)));
        assert!(!c.matches(wed.at(3, 50, 0, 0)));
    }

    #[test]
    fn a_mistake_in_an_expression_is_named_with_its_field() {
        for (text, says) in [
            ("* 9-17 * *", "has 4 field(s)"),
            ("* 25 * * *", "out of range for the hour field"),
            ("* * * * MON-FRY", "`FRY` in the day of week field"),
            ("*/0 * * * *", "is not a step"),
            ("* 17-9 * * *", "runs backwards"),
        ] {
            let err = Cron::parse(text).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn windows_are_read_in_their_time_zone() {
        let office = Window::new(Rule::Allow, "* 9-16 * * MON-FRI", "Europe/Berlin").unwrap();
        // 08:30 UTC is 09:30 in Berlin in winter.
        assert!(office.covers(at("2026-12-02T08:30:00Z")));
        assert!(!office.covers(at("2026-12-02T16:30:00Z")));
        assert!(Window::new(Rule::Allow, "* * * * *", "Europe/Berln").is_err());
    }

    #[test]
    fn a_freeze_wins_over_a_window_and_the_next_opening_is_found() {
        let windows = [
            Window::new(Rule::Allow, "* 9-16 * * MON-FRI", "UTC").unwrap(),
            // The afternoon of 2 December is frozen.
            Window::new(Rule::Deny, "* 12-23 2 12 *", "UTC").unwrap(),
        ];
        assert_eq!(closed_at(&windows, at("2026-12-02T10:00:00Z")), None);
        assert_eq!(
            closed_at(&windows, at("2026-12-02T13:00:00Z")),
            Some(Closed::Frozen(&windows[1]))
        );
        assert_eq!(
            closed_at(&windows, at("2026-12-02T20:00:00Z")),
            Some(Closed::Frozen(&windows[1]))
        );
        assert_eq!(
            closed_at(&windows, at("2026-12-03T07:00:00Z")),
            Some(Closed::OutsideWindows)
        );
        assert_eq!(
            next_open(&windows, at("2026-12-02T13:00:30Z")),
            Some(at("2026-12-03T09:00:00Z"))
        );
        // Friday evening → Monday morning.
        assert_eq!(
            next_open(&windows, at("2026-12-04T18:00:00Z")),
            Some(at("2026-12-07T09:00:00Z"))
        );
        let never = [Window::new(Rule::Deny, "* * * * *", "UTC").unwrap()];
        assert_eq!(next_open(&never, at("2026-12-02T13:00:00Z")), None);
    }

    #[test]
    fn a_window_is_stored_as_written_and_compiled_again_when_read() {
        let w = Window::new(Rule::Deny, "0 0 24-26 12 *", "America/New_York").unwrap();
        let json = serde_json::to_value(&w).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"rule": "deny", "cron": "0 0 24-26 12 *", "time_zone": "America/New_York"})
        );
        let back: Window = serde_json::from_value(json).unwrap();
        assert_eq!(back, w);
        let bad = serde_json::json!({"rule": "allow", "cron": "nope", "time_zone": "UTC"});
        assert!(serde_json::from_value::<Window>(bad).is_err());
    }
}
