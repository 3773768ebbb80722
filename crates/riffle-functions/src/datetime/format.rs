//! Time units, zones, Java date patterns and Pinot's date-time format specs.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use datafusion::arrow::array::timezone::Tz as ArrowTz;

use super::{In, Out};

const DAY_MS: i64 = 86_400_000;

/// A time zone: a name (`America/Los_Angeles`), an offset (`+05:30`) or UTC.
#[derive(Clone, Debug)]
pub enum Tz {
    /// UTC.
    Utc,
    /// Any other zone.
    Zone(ArrowTz),
}

impl Tz {
    /// UTC.
    pub fn utc() -> Tz {
        Tz::Utc
    }

    fn at(&self, millis: i64) -> Option<DateTime<FixedOffset>> {
        match self {
            Tz::Utc => Utc
                .timestamp_millis_opt(millis)
                .single()
                .map(|d| d.fixed_offset()),
            Tz::Zone(z) => z
                .timestamp_millis_opt(millis)
                .single()
                .map(|d| d.fixed_offset()),
        }
    }

    fn local_to_millis(&self, naive: &NaiveDateTime) -> Option<i64> {
        match self {
            Tz::Utc => Some(naive.and_utc().timestamp_millis()),
            Tz::Zone(z) => z
                .from_local_datetime(naive)
                .earliest()
                .map(|d| d.timestamp_millis()),
        }
    }

    /// The zone's offset from UTC at `millis`, in milliseconds.
    fn offset_millis(&self, millis: i64) -> i64 {
        self.at(millis)
            .map_or(0, |d| i64::from(d.offset().local_minus_utc()) * 1_000)
    }
}

/// Parses a zone name or offset (`UTC`, `America/New_York`, `+05:30`).
pub fn parse_tz(s: &str) -> Result<Tz, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("utc") || s.eq_ignore_ascii_case("gmt") || s == "Z" {
        return Ok(Tz::utc());
    }
    s.parse::<ArrowTz>()
        .map(Tz::Zone)
        .map_err(|e| format!("unknown time zone '{s}': {e}"))
}

/// Milliseconds in a Java `TimeUnit` (`MILLISECONDS` … `DAYS`, any case, singular too).
pub fn unit_millis(unit: &str) -> Option<i64> {
    let u = unit.trim().to_ascii_uppercase();
    let u = u.strip_suffix('S').unwrap_or(&u);
    Some(match u {
        "MILLISECOND" => 1,
        "SECOND" => 1_000,
        "MINUTE" => 60_000,
        "HOUR" => 3_600_000,
        "DAY" => DAY_MS,
        _ => return None,
    })
}

/// `millis` truncated to `unit` in `tz`; None for an unknown unit or a time out of range.
pub fn truncate(unit: &str, millis: i64, tz: &Tz) -> Option<i64> {
    let local = tz.at(millis)?.naive_local();
    let date = local.date();
    let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0);
    let t = match unit {
        "millisecond" | "milliseconds" => return Some(millis),
        "second" | "seconds" => local.with_nanosecond(0)?,
        "minute" | "minutes" => local.with_nanosecond(0)?.with_second(0)?,
        "hour" | "hours" => local.with_nanosecond(0)?.with_second(0)?.with_minute(0)?,
        "day" | "days" => midnight(date)?,
        "week" | "weeks" => midnight(
            date - chrono::Duration::days(i64::from(date.weekday().num_days_from_monday())),
        )?,
        "month" | "months" => midnight(NaiveDate::from_ymd_opt(date.year(), date.month(), 1)?)?,
        "quarter" | "quarters" => midnight(NaiveDate::from_ymd_opt(
            date.year(),
            (date.month() - 1) / 3 * 3 + 1,
            1,
        )?)?,
        "year" | "years" => midnight(NaiveDate::from_ymd_opt(date.year(), 1, 1)?)?,
        _ => return None,
    };
    tz.local_to_millis(&t)
}

/// A date field of `millis` in `tz` (`year`, `month`, `dayofweek`, ...).
pub fn field_of(field: &str, millis: i64, tz: &Tz) -> Option<i32> {
    let d = tz.at(millis)?;
    let v = match field {
        "year" => d.year(),
        "quarter" => (d.month0() / 3 + 1) as i32,
        "month" => d.month() as i32,
        "week" | "weekofyear" => d.iso_week().week() as i32,
        "dayofyear" | "doy" => d.ordinal() as i32,
        "day" | "dayofmonth" => d.day() as i32,
        "dayofweek" | "dow" => d.weekday().number_from_monday() as i32,
        "yearofweek" | "yow" => d.iso_week().year(),
        "hour" => d.hour() as i32,
        "minute" => d.minute() as i32,
        "second" => d.second() as i32,
        "millisecond" => (d.timestamp_subsec_millis()) as i32,
        _ => return None,
    };
    Some(v)
}

/// An ISO-8601 duration (`PT1H`, `P1D`, `PT0.5S`, `-PT10M`) in milliseconds, as Java's
/// `Duration.parse` reads it (days, hours, minutes, seconds).
pub fn iso_duration_millis(s: &str) -> Option<i64> {
    let s = s.trim().to_ascii_uppercase();
    let (sign, s) = match s.strip_prefix('-') {
        Some(rest) => (-1.0, rest.to_string()),
        None => (1.0, s.trim_start_matches('+').to_string()),
    };
    let s = s.strip_prefix('P')?;
    let (days, time) = match s.split_once('T') {
        Some((d, t)) => (d, t),
        None => (s, ""),
    };
    let mut total = 0.0;
    let mut any = false;
    let mut take = |part: &str, units: &[(char, f64)]| -> Option<()> {
        let mut num = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' || c == '-' {
                num.push(c);
            } else {
                let ms = units.iter().find(|(u, _)| *u == c)?.1;
                total += num.parse::<f64>().ok()? * ms;
                num.clear();
                any = true;
            }
        }
        num.is_empty().then_some(())
    };
    take(days, &[('D', DAY_MS as f64)])?;
    take(time, &[('H', 3_600_000.0), ('M', 60_000.0), ('S', 1_000.0)])?;
    any.then_some((sign * total) as i64)
}

/// A Java `SimpleDateFormat` pattern as a chrono format string, and whether it has a time of
/// day.
fn java_pattern(p: &str) -> Result<(String, bool), String> {
    let chars: Vec<char> = p.chars().collect();
    let mut out = String::new();
    let mut has_time = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // A quoted literal; '' is a quote.
            if chars.get(i + 1) == Some(&'\'') {
                out.push('\'');
                i += 2;
                continue;
            }
            i += 1;
            while i < chars.len() {
                if chars[i] == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        out.push('\'');
                        i += 2;
                        continue;
                    }
                    break;
                }
                if chars[i] == '%' {
                    out.push_str("%%");
                } else {
                    out.push(chars[i]);
                }
                i += 1;
            }
            i += 1;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            if c == '%' {
                out.push_str("%%");
            } else {
                out.push(c);
            }
            i += 1;
            continue;
        }
        let n = chars[i..].iter().take_while(|x| **x == c).count();
        let spec = match (c, n) {
            ('y', 2) => "%y",
            ('y', _) => "%Y",
            ('M', 1) => "%-m",
            ('M', 2) => "%m",
            ('M', 3) => "%b",
            ('M', _) => "%B",
            ('d', 1) => "%-d",
            ('d', _) => "%d",
            ('D', _) => "%j",
            ('E', 1..=3) => "%a",
            ('E', _) => "%A",
            ('u', _) => "%u",
            ('a', _) => "%p",
            ('H', 1) => "%-H",
            ('H', _) => "%H",
            ('h', 1) => "%-I",
            ('h', _) => "%I",
            ('m', 1) => "%-M",
            ('m', _) => "%M",
            ('s', 1) => "%-S",
            ('s', _) => "%S",
            ('S', 3) => "%3f",
            ('S', 6) => "%6f",
            ('S', 9) => "%9f",
            ('Z', _) => "%z",
            ('X', 1..=2) => "%z",
            ('X', _) => "%:z",
            ('z', _) => "%Z",
            _ => return Err(format!("pattern letter '{}' x{n} is not supported", c)),
        };
        if matches!(c, 'a' | 'H' | 'h' | 'm' | 's' | 'S') {
            has_time = true;
        }
        out.push_str(spec);
        i += n;
    }
    Ok((out, has_time))
}

/// How a time value is written: an epoch number in some unit, epoch milliseconds
/// (TIMESTAMP), or text in a date pattern (in a zone).
#[derive(Clone, Debug)]
pub enum DateTimeFormat {
    /// Epoch value in units of `size_ms` milliseconds.
    Epoch {
        /// Milliseconds per unit of the value (`5:MINUTES` = 300,000).
        size_ms: i64,
    },
    /// Epoch milliseconds.
    Timestamp,
    /// Text in a date pattern.
    Pattern {
        /// The chrono format string.
        chrono: String,
        /// Whether the pattern has a time of day.
        has_time: bool,
        /// The zone the text is in.
        tz: Tz,
    },
}

impl DateTimeFormat {
    /// A date pattern (Java's letters) in `tz` (UTC when None).
    pub fn pattern(p: &str, tz: Option<Tz>) -> Result<DateTimeFormat, String> {
        let (chrono, has_time) = java_pattern(p.trim())?;
        Ok(DateTimeFormat::Pattern {
            chrono,
            has_time,
            tz: tz.unwrap_or_else(Tz::utc),
        })
    }

    /// Parses Pinot's format spec: `size:UNIT:EPOCH`, `size:UNIT:TIMESTAMP`,
    /// `size:UNIT:SIMPLE_DATE_FORMAT:pattern[ tz(zone)]`, or the pipe forms `EPOCH|UNIT|size`,
    /// `TIMESTAMP`, `SIMPLE_DATE_FORMAT|pattern|zone`.
    pub fn parse(spec: &str) -> Result<DateTimeFormat, String> {
        let spec = spec.trim();
        if spec.contains('|') || !spec.contains(':') {
            let parts: Vec<&str> = spec.split('|').collect();
            return match parts[0].trim().to_ascii_uppercase().as_str() {
                "EPOCH" => {
                    let unit = parts.get(1).copied().unwrap_or("MILLISECONDS");
                    let size: i64 = match parts.get(2) {
                        Some(s) => s
                            .trim()
                            .parse()
                            .map_err(|_| format!("size '{s}' is not a number"))?,
                        None => 1,
                    };
                    let ms =
                        unit_millis(unit).ok_or_else(|| format!("unknown time unit '{unit}'"))?;
                    Self::epoch(size, ms)
                }
                "TIMESTAMP" => Ok(DateTimeFormat::Timestamp),
                "SIMPLE_DATE_FORMAT" => {
                    let p = parts.get(1).ok_or("a date pattern is missing")?;
                    let tz = parts.get(2).map(|z| parse_tz(z)).transpose()?;
                    Self::pattern(p, tz)
                }
                other => Err(format!("unknown format type '{other}'")),
            };
        }
        let parts: Vec<&str> = spec.splitn(4, ':').collect();
        let [size, unit, kind, rest @ ..] = parts.as_slice() else {
            return Err("expected size:UNIT:TYPE".into());
        };
        let size: i64 = size
            .trim()
            .parse()
            .map_err(|_| format!("size '{size}' is not a number"))?;
        let ms = unit_millis(unit).ok_or_else(|| format!("unknown time unit '{unit}'"))?;
        match kind.trim().to_ascii_uppercase().as_str() {
            "EPOCH" => Self::epoch(size, ms),
            "TIMESTAMP" => Ok(DateTimeFormat::Timestamp),
            "SIMPLE_DATE_FORMAT" => {
                let p = rest.first().ok_or("a date pattern is missing")?;
                match p.find(" tz(") {
                    Some(at) => {
                        let zone = p[at + 4..].trim_end().trim_end_matches(')');
                        Self::pattern(&p[..at], Some(parse_tz(zone)?))
                    }
                    None => Self::pattern(p, None),
                }
            }
            other => Err(format!("unknown format type '{other}'")),
        }
    }

    fn epoch(size: i64, unit_ms: i64) -> Result<DateTimeFormat, String> {
        if size <= 0 {
            return Err(format!("size {size} must be positive"));
        }
        Ok(DateTimeFormat::Epoch {
            size_ms: size.checked_mul(unit_ms).ok_or("size out of range")?,
        })
    }

    /// Whether values of this format are text.
    pub fn is_text(&self) -> bool {
        matches!(self, DateTimeFormat::Pattern { .. })
    }

    /// The zone of a date pattern.
    pub fn tz(&self) -> Option<&Tz> {
        match self {
            DateTimeFormat::Pattern { tz, .. } => Some(tz),
            _ => None,
        }
    }

    /// A value of this format as epoch milliseconds (None if it does not read).
    pub fn to_millis(&self, v: In<'_>) -> Option<i64> {
        match self {
            DateTimeFormat::Epoch { size_ms } => v.long()?.checked_mul(*size_ms),
            DateTimeFormat::Timestamp => v.long(),
            DateTimeFormat::Pattern {
                chrono,
                has_time,
                tz,
            } => {
                let owned;
                let text = match v {
                    In::Text(s) => s.trim(),
                    In::Long(n) => {
                        owned = n.to_string();
                        owned.as_str()
                    }
                    In::Double(_) => return None,
                };
                let naive = if *has_time {
                    NaiveDateTime::parse_from_str(text, chrono).ok()?
                } else {
                    NaiveDate::parse_from_str(text, chrono)
                        .ok()?
                        .and_hms_opt(0, 0, 0)?
                };
                tz.local_to_millis(&naive)
            }
        }
    }

    /// Epoch milliseconds written in this format.
    pub fn from_millis(&self, ms: i64) -> Option<Out> {
        match self {
            DateTimeFormat::Epoch { size_ms } => Some(Out::Long(ms / size_ms)),
            DateTimeFormat::Timestamp => Some(Out::Long(ms)),
            DateTimeFormat::Pattern { chrono, tz, .. } => {
                let d = tz.at(ms)?;
                let mut s = String::new();
                use std::fmt::Write;
                write!(s, "{}", d.format(chrono)).ok()?;
                Some(Out::Text(s))
            }
        }
    }
}

/// A bucket size (`15:MINUTES`, `1:DAYS`).
#[derive(Clone, Copy, Debug)]
pub struct Granularity {
    ms: i64,
}

impl Granularity {
    /// Parses `size:UNIT`.
    pub fn parse(s: &str) -> Result<Granularity, String> {
        let (size, unit) = s.trim().split_once(':').ok_or("expected size:UNIT")?;
        let size: i64 = size
            .trim()
            .parse()
            .map_err(|_| format!("size '{size}' is not a number"))?;
        let ms = unit_millis(unit).ok_or_else(|| format!("unknown time unit '{unit}'"))?;
        if size <= 0 {
            return Err(format!("size {size} must be positive"));
        }
        Ok(Granularity {
            ms: size.checked_mul(ms).ok_or("size out of range")?,
        })
    }

    /// `ms` floored to the bucket; buckets start at local midnight of `tz` when given.
    pub fn bucket(&self, ms: i64, tz: Option<&Tz>) -> Option<i64> {
        let off = tz.map_or(0, |z| z.offset_millis(ms));
        let local = ms.checked_add(off)?;
        Some(local.div_euclid(self.ms) * self.ms - off)
    }
}
