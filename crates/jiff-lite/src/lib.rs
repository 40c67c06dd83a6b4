//! A stand-in for the few parts of `jiff` that k8s-openapi uses (see README.md): an RFC 3339
//! [`Timestamp`] and [`fmt::strtime::format`]. Written for Slicelab; the API mirrors jiff's names so
//! that k8s-openapi compiles against it unchanged.
#![forbid(unsafe_code)]

use core::fmt as cfmt;
use core::str::FromStr;

/// Why a timestamp could not be made, read or written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    fn new(msg: impl Into<String>) -> Error {
        Error(msg.into())
    }
}

impl cfmt::Display for Error {
    fn fmt(&self, f: &mut cfmt::Formatter<'_>) -> cfmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// Seconds from 1970-01-01 to 0000-01-01T00:00:00Z and to 9999-12-31T23:59:59Z: the years a
/// four-digit RFC 3339 year can name.
const MIN_SECOND: i64 = -62_167_219_200;
const MAX_SECOND: i64 = 253_402_300_799;

/// An instant in time, in UTC, with nanosecond precision.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    // Field order matters: the derived order is the order in time.
    second: i64,
    nanosecond: u32,
}

impl Timestamp {
    /// 1970-01-01T00:00:00Z.
    pub const UNIX_EPOCH: Timestamp = Timestamp { second: 0, nanosecond: 0 };
    /// The earliest instant: 0000-01-01T00:00:00Z.
    pub const MIN: Timestamp = Timestamp { second: MIN_SECOND, nanosecond: 0 };
    /// The latest instant: 9999-12-31T23:59:59.999999999Z.
    pub const MAX: Timestamp = Timestamp { second: MAX_SECOND, nanosecond: 999_999_999 };

    /// `second` seconds and `nanosecond` nanoseconds (0 to 999,999,999) after the epoch.
    pub fn new(second: i64, nanosecond: i32) -> Result<Timestamp, Error> {
        if !(0..1_000_000_000).contains(&nanosecond) {
            return Err(Error::new(format!("nanosecond {nanosecond} is not in 0..=999999999")));
        }
        if !(MIN_SECOND..=MAX_SECOND).contains(&second) {
            return Err(Error::new(format!(
                "{second} seconds from the Unix epoch is outside the years 0000 to 9999"
            )));
        }
        Ok(Timestamp { second, nanosecond: nanosecond as u32 })
    }

    pub fn from_second(second: i64) -> Result<Timestamp, Error> {
        Timestamp::new(second, 0)
    }

    pub fn from_millisecond(millisecond: i64) -> Result<Timestamp, Error> {
        let s = millisecond.div_euclid(1000);
        let ms = millisecond.rem_euclid(1000) as i32;
        Timestamp::new(s, ms * 1_000_000)
    }

    /// Whole seconds since the epoch, rounded toward negative infinity.
    pub fn as_second(self) -> i64 {
        self.second
    }

    /// Whole milliseconds since the epoch, rounded toward negative infinity.
    pub fn as_millisecond(self) -> i64 {
        self.second * 1000 + i64::from(self.nanosecond / 1_000_000)
    }

    /// The nanoseconds past [`Timestamp::as_second`], 0 to 999,999,999.
    pub fn subsec_nanosecond(self) -> i32 {
        self.nanosecond as i32
    }

    /// The calendar date and time of day, in UTC.
    fn civil(self) -> Civil {
        let days = self.second.div_euclid(86_400);
        let secs = self.second.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: secs / 3600,
            minute: secs / 60 % 60,
            second: secs % 60,
            nanosecond: self.nanosecond,
        }
    }
}

/// A timestamp's calendar fields in UTC.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanosecond: u32,
}

/// Days from 1970-01-01 to the given proleptic Gregorian date. Counts in 400-year eras, each
/// 146,097 days, with years starting in March so that the leap day is the last day of a year.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400);
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl cfmt::Display for Timestamp {
    /// RFC 3339 in UTC, with the fraction of a second only when there is one (trailing zeros dropped).
    fn fmt(&self, f: &mut cfmt::Formatter<'_>) -> cfmt::Result {
        let s = fmt::strtime::format("%Y-%m-%dT%H:%M:%S%.fZ", *self).map_err(|_| cfmt::Error)?;
        f.write_str(&s)
    }
}

impl cfmt::Debug for Timestamp {
    fn fmt(&self, f: &mut cfmt::Formatter<'_>) -> cfmt::Result {
        cfmt::Display::fmt(self, f)
    }
}

/// A cursor over the text being parsed, with errors that say where it went wrong.
struct Reader<'a> {
    text: &'a str,
    at: usize,
}

impl Reader<'_> {
    fn fail(&self, expected: &str) -> Error {
        let found = match self.text[self.at..].chars().next() {
            Some(c) => format!("`{c}`"),
            None => "the end".to_string(),
        };
        Error::new(format!(
            "invalid timestamp {:?}: expected {expected} at byte {}, found {found} \
             (a timestamp looks like 2024-01-02T03:04:05Z or 2024-01-02T03:04:05.5+01:00)",
            self.text, self.at
        ))
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn eat(&mut self, what: &str, ok: impl Fn(u8) -> bool) -> Result<u8, Error> {
        match self.peek() {
            Some(b) if ok(b) => {
                self.at += 1;
                Ok(b)
            }
            _ => Err(self.fail(what)),
        }
    }

    fn digits(&mut self, n: usize, what: &str) -> Result<u32, Error> {
        let mut v = 0;
        for _ in 0..n {
            let b = self.eat(what, |b| b.is_ascii_digit())?;
            v = v * 10 + u32::from(b - b'0');
        }
        Ok(v)
    }

    /// A two-digit field in `0..=max`.
    fn field(&mut self, what: &str, min: u32, max: u32) -> Result<u32, Error> {
        let start = self.at;
        let v = self.digits(2, &format!("two digits of the {what}"))?;
        if v < min || v > max {
            self.at = start;
            return Err(self.fail(&format!("a {what} from {min:02} to {max:02}")));
        }
        Ok(v)
    }
}

impl FromStr for Timestamp {
    type Err = Error;

    fn from_str(text: &str) -> Result<Timestamp, Error> {
        let mut r = Reader { text, at: 0 };
        let year = i64::from(r.digits(4, "a four-digit year")?);
        r.eat("`-` after the year", |b| b == b'-')?;
        let month = r.field("month", 1, 12)?;
        r.eat("`-` after the month", |b| b == b'-')?;
        let day = r.field("day", 1, days_in_month(year, month))?;
        r.eat("`T` between the date and the time", |b| matches!(b, b'T' | b't' | b' '))?;
        let hour = r.field("hour", 0, 23)?;
        r.eat("`:` after the hour", |b| b == b':')?;
        let minute = r.field("minute", 0, 59)?;
        r.eat("`:` after the minute", |b| b == b':')?;
        // A leap second (60) is read as 59, as jiff and Go do.
        let second = r.field("second", 0, 60)?.min(59);
        let mut nanosecond = 0u32;
        if matches!(r.peek(), Some(b'.' | b',')) {
            r.at += 1;
            let mut n = 0;
            while let Some(b) = r.peek().filter(u8::is_ascii_digit) {
                if n == 9 {
                    return Err(r.fail("at most nine digits of a fraction of a second"));
                }
                nanosecond = nanosecond * 10 + u32::from(b - b'0');
                n += 1;
                r.at += 1;
            }
            if n == 0 {
                return Err(r.fail("a digit of a fraction of a second"));
            }
            nanosecond *= 10u32.pow(9 - n);
        }
        let offset = match r.eat("`Z` or an offset like +01:00", |b| matches!(b, b'Z' | b'z' | b'+' | b'-'))? {
            b'Z' | b'z' => 0,
            sign => {
                let h = i64::from(r.field("offset hour", 0, 23)?);
                r.eat("`:` in the offset", |b| b == b':')?;
                let m = i64::from(r.field("offset minute", 0, 59)?);
                let s = (h * 60 + m) * 60;
                if sign == b'-' {
                    -s
                } else {
                    s
                }
            }
        };
        if r.at != text.len() {
            return Err(r.fail("the end of the timestamp"));
        }
        let days = days_from_civil(year, month, day);
        let local = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
        Timestamp::new(local - offset, nanosecond as i32)
    }
}

pub mod fmt {
    //! Writing timestamps.
    pub mod strtime {
        //! `strftime`-style writing, for the directives Kubernetes' layouts use.
        use crate::{Error, Timestamp};
        use core::fmt::Write;

        /// Writes `t` (in UTC) by `layout`: `%Y` (four-digit year), `%m`, `%d`, `%H`, `%M`, `%S`
        /// (two digits each), `%f` (fraction of a second, at least one digit), `%.f` (a dot and the
        /// fraction, nothing when it is zero), `%Nf` / `%.Nf` (exactly N digits, 1 to 9, truncated),
        /// `%%`; anything else is copied. Any other directive is an error.
        pub fn format(layout: impl AsRef<[u8]>, t: Timestamp) -> Result<String, Error> {
            let layout = core::str::from_utf8(layout.as_ref())
                .map_err(|_| Error::new("a strtime layout must be UTF-8"))?;
            let c = t.civil();
            let mut out = String::with_capacity(layout.len() + 16);
            let mut chars = layout.chars();
            while let Some(ch) = chars.next() {
                if ch != '%' {
                    out.push(ch);
                    continue;
                }
                let rest = chars.as_str();
                let dot = rest.starts_with('.');
                let after_dot = if dot { &rest[1..] } else { rest };
                let width = after_dot.as_bytes().first().filter(|b| (b'1'..=b'9').contains(b)).map(|b| (b - b'0') as usize);
                let spec_at = usize::from(dot) + usize::from(width.is_some());
                let Some(spec) = rest[spec_at..].chars().next() else {
                    return Err(Error::new(format!("strtime layout {layout:?} ends in `%`")));
                };
                if (dot || width.is_some()) && spec != 'f' {
                    return Err(Error::new(format!("strtime layout {layout:?}: a precision is only allowed on `%f`")));
                }
                chars = rest[spec_at + spec.len_utf8()..].chars();
                let w = match spec {
                    'Y' if c.year < 0 => write!(out, "-{:04}", -c.year),
                    'Y' => write!(out, "{:04}", c.year),
                    'm' => write!(out, "{:02}", c.month),
                    'd' => write!(out, "{:02}", c.day),
                    'H' => write!(out, "{:02}", c.hour),
                    'M' => write!(out, "{:02}", c.minute),
                    'S' => write!(out, "{:02}", c.second),
                    '%' => write!(out, "%"),
                    'f' => {
                        let digits = format!("{:09}", c.nanosecond);
                        let shown = match width {
                            Some(n) => &digits[..n],
                            None => match digits.trim_end_matches('0') {
                                "" if dot => "",
                                "" => "0",
                                s => s,
                            },
                        };
                        if dot && !shown.is_empty() {
                            out.push('.');
                        }
                        out.push_str(shown);
                        Ok(())
                    }
                    other => {
                        return Err(Error::new(format!(
                            "strtime layout {layout:?}: `%{other}` is not supported here"
                        )))
                    }
                };
                w.map_err(|_| Error::new("could not write a timestamp"))?;
            }
            Ok(out)
        }
    }
}

#[cfg(feature = "serde")]
mod serde_impl {
    use super::Timestamp;
    use core::fmt as cfmt;

    impl serde::Serialize for Timestamp {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(self)
        }
    }

    impl<'de> serde::Deserialize<'de> for Timestamp {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
            struct V;
            impl serde::de::Visitor<'_> for V {
                type Value = Timestamp;
                fn expecting(&self, f: &mut cfmt::Formatter<'_>) -> cfmt::Result {
                    f.write_str("an RFC 3339 timestamp string")
                }
                fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Timestamp, E> {
                    v.parse().map_err(E::custom)
                }
            }
            d.deserialize_str(V)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn reads_rfc3339_as_kubernetes_writes_it() {
        assert_eq!(ts("1970-01-01T00:00:00Z"), Timestamp::UNIX_EPOCH);
        assert_eq!(ts("2024-01-02T03:04:05Z").as_second(), 1_704_164_645);
        assert_eq!(ts("2024-01-02T03:04:05.5Z").as_millisecond(), 1_704_164_645_500);
        assert_eq!(ts("2024-01-02T04:04:05+01:00"), ts("2024-01-02T03:04:05Z"));
        assert_eq!(ts("2024-01-01T23:04:05-04:00"), ts("2024-01-02T03:04:05Z"));
        assert_eq!(ts("2024-01-02t03:04:05z"), ts("2024-01-02 03:04:05Z"));
        assert_eq!(ts("2024-02-29T00:00:00,000000001Z").subsec_nanosecond(), 1);
        assert_eq!(ts("2016-12-31T23:59:60Z"), ts("2016-12-31T23:59:59Z"));
        assert_eq!(ts("0000-01-01T00:00:00Z"), Timestamp::MIN);
        assert_eq!(ts("9999-12-31T23:59:59.999999999Z"), Timestamp::MAX);
        assert!(ts("1969-12-31T23:59:59Z") < Timestamp::UNIX_EPOCH);
    }

    #[test]
    fn bad_timestamps_are_errors_that_say_what_was_expected() {
        for (bad, says) in [
            ("", "four-digit year"),
            ("2024-13-01T00:00:00Z", "month from 01 to 12"),
            ("2023-02-29T00:00:00Z", "day from 01 to 28"),
            ("2024-01-02", "`T`"),
            ("2024-01-02T03:04:05", "`Z` or an offset"),
            ("2024-01-02T24:00:00Z", "hour"),
            ("2024-01-02T03:04:05.Z", "digit of a fraction"),
            ("2024-01-02T03:04:05.0123456789Z", "nine digits"),
            ("2024-01-02T03:04:05Zjunk", "end of the timestamp"),
            ("2024-01-02T03:04:05+0100", "`:` in the offset"),
            ("0000-01-01T00:00:00+00:01", "outside the years"),
            ("2024-01-02T03:04:0é", "two digits of the second"),
        ] {
            let e = bad.parse::<Timestamp>().expect_err(bad).to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert!(Timestamp::from_second(MAX_SECOND + 1).is_err());
        assert!(Timestamp::new(0, 1_000_000_000).is_err());
    }

    #[test]
    fn writes_the_layouts_kubernetes_uses() {
        let t = ts("2024-01-02T03:04:05.123456789Z");
        assert_eq!(fmt::strtime::format("%Y-%m-%dT%H:%M:%SZ", t).unwrap(), "2024-01-02T03:04:05Z");
        assert_eq!(fmt::strtime::format("%Y-%m-%dT%H:%M:%S%.6fZ", t).unwrap(), "2024-01-02T03:04:05.123456Z");
        let whole = ts("2024-01-02T03:04:05Z");
        assert_eq!(fmt::strtime::format("%S%.6f|%.f|%f|%3f|%%", whole).unwrap(), "05.000000||0|000|%");
        assert_eq!(t.to_string(), "2024-01-02T03:04:05.123456789Z");
        assert_eq!(ts("2024-01-02T03:04:05.5Z").to_string(), "2024-01-02T03:04:05.5Z");
        assert!(fmt::strtime::format("%Z", t).is_err());
        assert!(fmt::strtime::format("%.3S", t).is_err());
        assert!(fmt::strtime::format("50%", t).is_err());
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_round_trips_as_a_string() {
        let t = ts("2024-01-02T03:04:05.25Z");
        let j = serde_json::to_string(&t).unwrap();
        assert_eq!(j, "\"2024-01-02T03:04:05.25Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&j).unwrap(), t);
        assert!(serde_json::from_str::<Timestamp>("12").unwrap_err().to_string().contains("RFC 3339"));
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
    }

    #[test]
    fn the_calendar_agrees_with_a_day_by_day_count() {
        // Walk every day from 1600 to 2400 and check the arithmetic against counting.
        let mut days = days_from_civil(1600, 1, 1);
        for year in 1600..2400 {
            for month in 1..=12 {
                for day in 1..=days_in_month(year, month) {
                    assert_eq!(days_from_civil(year, month, day), days, "{year}-{month}-{day}");
                    assert_eq!(civil_from_days(days), (year, month, day));
                    days += 1;
                }
            }
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
    }

    proptest! {
        #[test]
        fn what_is_written_reads_back(second in MIN_SECOND..=MAX_SECOND, nano in 0i32..1_000_000_000) {
            let t = Timestamp::new(second, nano).unwrap();
            prop_assert_eq!(t.to_string().parse::<Timestamp>().unwrap(), t);
            let whole = fmt::strtime::format("%Y-%m-%dT%H:%M:%SZ", t).unwrap();
            prop_assert_eq!(whole.parse::<Timestamp>().unwrap(), Timestamp::from_second(second).unwrap());
            prop_assert_eq!(Timestamp::from_millisecond(t.as_millisecond()).unwrap().as_millisecond(), t.as_millisecond());
        }
    }
}
