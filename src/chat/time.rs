//! `strftime_now(fmt)` for chat templates: a calendar moment and a small C/Python `strftime`.
//!
//! No time-zone database and no dependency: the moment is either given by the caller
//! ([`ChatDateTime`], which tests use to match Python's output) or read from the system clock in
//! UTC. Python's `datetime.now()` in transformers is local time; a server in UTC prints the same.

use std::fmt::Write;

/// A calendar date and wall-clock time (proleptic Gregorian, no time zone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChatDateTime {
    pub year: i32,
    /// 1..=12
    pub month: u32,
    /// 1..=31 (checked against the month)
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a civil date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y as i64 - 1 } else { y as i64 };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The civil date of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i32, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = (yoe + era * 400 + if m <= 2 { 1 } else { 0 }) as i32;
    (y, m, d)
}

impl ChatDateTime {
    /// A moment, if every field is in range.
    pub fn new(year: i32, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> Option<ChatDateTime> {
        let ok = (1..=9999).contains(&year)
            && (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month)
            && hour < 24
            && minute < 60
            && second < 60;
        ok.then_some(ChatDateTime { year, month, day, hour, minute, second })
    }

    /// The moment `secs` seconds after 1970-01-01T00:00:00 UTC.
    pub fn from_unix(secs: i64) -> ChatDateTime {
        let (y, m, d) = civil_from_days(secs.div_euclid(86400));
        let s = secs.rem_euclid(86400) as u32;
        ChatDateTime { year: y, month: m, day: d, hour: s / 3600, minute: s / 60 % 60, second: s % 60 }
    }

    /// The system clock in UTC. `None` where there is no clock (wasm32 without WASI): callers in
    /// the browser pass the date with [`crate::chat::ChatTemplate::with_now`].
    pub fn now_utc() -> Option<ChatDateTime> {
        #[cfg(all(target_arch = "wasm32", not(target_os = "wasi")))]
        {
            None
        }
        #[cfg(not(all(target_arch = "wasm32", not(target_os = "wasi"))))]
        {
            let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?;
            Some(ChatDateTime::from_unix(d.as_secs() as i64))
        }
    }

    /// 0 = Monday … 6 = Sunday.
    fn weekday(&self) -> usize {
        (days_from_civil(self.year, self.month, self.day) + 3).rem_euclid(7) as usize
    }

    fn day_of_year(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day) - days_from_civil(self.year, 1, 1) + 1
    }

    /// Formats like C's `strftime` in the C locale (as Python's `datetime.strftime` on glibc),
    /// including glibc's `%-d` style flag that drops padding. Directives it does not know are
    /// copied through unchanged, as glibc does.
    pub fn strftime(&self, fmt: &str) -> String {
        let mut out = String::with_capacity(fmt.len() + 16);
        let mut chars = fmt.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let no_pad = chars.peek() == Some(&'-');
            if no_pad {
                chars.next();
            }
            let Some(d) = chars.next() else {
                out.push('%');
                if no_pad {
                    out.push('-');
                }
                break;
            };
            let num = |out: &mut String, v: i64, width: usize| {
                if no_pad {
                    let _ = write!(out, "{v}");
                } else {
                    let _ = write!(out, "{v:0width$}");
                }
            };
            let month = MONTHS[self.month as usize - 1];
            let weekday = WEEKDAYS[self.weekday()];
            let hour12 = if self.hour.is_multiple_of(12) { 12 } else { self.hour % 12 };
            match d {
                'a' => out.push_str(&weekday[..3]),
                'A' => out.push_str(weekday),
                'b' | 'h' => out.push_str(&month[..3]),
                'B' => out.push_str(month),
                'd' => num(&mut out, self.day as i64, 2),
                'e' => {
                    let _ = if no_pad { write!(out, "{}", self.day) } else { write!(out, "{:2}", self.day) };
                }
                'm' => num(&mut out, self.month as i64, 2),
                'y' => num(&mut out, self.year.rem_euclid(100) as i64, 2),
                'Y' => {
                    let _ = write!(out, "{}", self.year);
                }
                'H' => num(&mut out, self.hour as i64, 2),
                'I' => num(&mut out, hour12 as i64, 2),
                'M' => num(&mut out, self.minute as i64, 2),
                'S' => num(&mut out, self.second as i64, 2),
                'p' => out.push_str(if self.hour < 12 { "AM" } else { "PM" }),
                'j' => num(&mut out, self.day_of_year(), 3),
                'u' => num(&mut out, self.weekday() as i64 + 1, 1),
                'w' => num(&mut out, (self.weekday() as i64 + 1) % 7, 1),
                'F' => {
                    let _ = write!(out, "{}-{:02}-{:02}", self.year, self.month, self.day);
                }
                'D' => {
                    let _ = write!(out, "{:02}/{:02}/{:02}", self.month, self.day, self.year.rem_euclid(100));
                }
                'T' => {
                    let _ = write!(out, "{:02}:{:02}:{:02}", self.hour, self.minute, self.second);
                }
                'R' => {
                    let _ = write!(out, "{:02}:{:02}", self.hour, self.minute);
                }
                'c' => {
                    let _ = write!(
                        out,
                        "{} {} {:2} {:02}:{:02}:{:02} {}",
                        &weekday[..3],
                        &month[..3],
                        self.day,
                        self.hour,
                        self.minute,
                        self.second,
                        self.year
                    );
                }
                'x' => {
                    let _ = write!(out, "{:02}/{:02}/{:02}", self.month, self.day, self.year.rem_euclid(100));
                }
                'X' => {
                    let _ = write!(out, "{:02}:{:02}:{:02}", self.hour, self.minute, self.second);
                }
                // A naive datetime has no zone: Python prints nothing for these.
                'z' | 'Z' => {}
                'n' => out.push('\n'),
                't' => out.push('\t'),
                '%' => out.push('%'),
                other => {
                    out.push('%');
                    if no_pad {
                        out.push('-');
                    }
                    out.push(other);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip_and_weekdays() {
        for z in [-800_000i64, -1, 0, 1, 19_000, 20_152, 2_932_896] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        // 2025-03-05 was a Wednesday; 1970-01-01 a Thursday; 2000-02-29 a Tuesday.
        assert_eq!(ChatDateTime::new(2025, 3, 5, 0, 0, 0).unwrap().strftime("%A %a"), "Wednesday Wed");
        assert_eq!(ChatDateTime::from_unix(0).strftime("%a %Y-%m-%d %H:%M:%S"), "Thu 1970-01-01 00:00:00");
        assert_eq!(
            ChatDateTime::new(2000, 2, 29, 13, 5, 9).unwrap().strftime("%a %j %I%p %-d/%-m %e|%%|%q"),
            "Tue 060 01PM 29/2 29|%|%q"
        );
        assert!(ChatDateTime::new(2023, 2, 29, 0, 0, 0).is_none());
    }
}
