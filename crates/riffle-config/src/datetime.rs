//! Pinot date-time formats and granularities, in colon (`1:MILLISECONDS:EPOCH`) and pipe
//! (`EPOCH|MILLISECONDS|1`) syntax, plus the period (`6h`, `1h30m`, `2d`) and data-size
//! (`50M`, `200MB`) notations used by stream configs.

/// Java `TimeUnit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeUnit {
    /// ns.
    Nanoseconds,
    /// µs.
    Microseconds,
    /// ms.
    Milliseconds,
    /// s.
    Seconds,
    /// min.
    Minutes,
    /// h.
    Hours,
    /// d.
    Days,
}

impl TimeUnit {
    /// Parses a Java `TimeUnit` name (any case).
    pub fn parse(s: &str) -> Result<TimeUnit, String> {
        Ok(match s.trim().to_ascii_uppercase().as_str() {
            "NANOSECONDS" => TimeUnit::Nanoseconds,
            "MICROSECONDS" => TimeUnit::Microseconds,
            "MILLISECONDS" => TimeUnit::Milliseconds,
            "SECONDS" => TimeUnit::Seconds,
            "MINUTES" => TimeUnit::Minutes,
            "HOURS" => TimeUnit::Hours,
            "DAYS" => TimeUnit::Days,
            other => {
                return Err(format!(
                    "unknown time unit '{other}', expected one of NANOSECONDS, MICROSECONDS, \
                     MILLISECONDS, SECONDS, MINUTES, HOURS, DAYS"
                ))
            }
        })
    }

    /// Converts `v` units to milliseconds (truncating sub-millisecond units).
    pub fn to_millis(self, v: i64) -> i64 {
        match self {
            TimeUnit::Nanoseconds => v / 1_000_000,
            TimeUnit::Microseconds => v / 1_000,
            TimeUnit::Milliseconds => v,
            TimeUnit::Seconds => v.saturating_mul(1_000),
            TimeUnit::Minutes => v.saturating_mul(60_000),
            TimeUnit::Hours => v.saturating_mul(3_600_000),
            TimeUnit::Days => v.saturating_mul(86_400_000),
        }
    }
}

/// How a date-time column's values are written.
#[derive(Clone, Debug, PartialEq)]
pub enum TimeFormat {
    /// A number of `size` × `unit` since the epoch.
    Epoch,
    /// A TIMESTAMP (epoch milliseconds, or `yyyy-MM-dd HH:mm:ss[.S]` text).
    Timestamp,
    /// A Java `SimpleDateFormat` pattern with an optional time zone.
    SimpleDateFormat {
        /// The pattern, e.g. `yyyyMMdd`.
        pattern: String,
        /// The zone, default `UTC`.
        zone: String,
    },
}

/// A parsed date-time format.
#[derive(Clone, Debug, PartialEq)]
pub struct DateTimeFormat {
    /// Unit size (e.g. 5 for `5:MINUTES:EPOCH`).
    pub size: u32,
    /// Unit.
    pub unit: TimeUnit,
    /// Kind.
    pub kind: TimeFormat,
}

impl DateTimeFormat {
    /// The format of TIMESTAMP columns.
    pub fn timestamp() -> DateTimeFormat {
        DateTimeFormat {
            size: 1,
            unit: TimeUnit::Milliseconds,
            kind: TimeFormat::Timestamp,
        }
    }

    /// Parses colon syntax (first character is a digit) or pipe syntax.
    pub fn parse(s: &str) -> Result<DateTimeFormat, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty date-time format: expected e.g. 1:MILLISECONDS:EPOCH".into());
        }
        if s.as_bytes()[0].is_ascii_digit() {
            // size:unit:format[:pattern]
            let mut parts = s.splitn(4, ':');
            let size = parts.next().unwrap_or_default();
            let unit = parts.next().ok_or_else(|| colon_help(s))?;
            let fmt = parts.next().ok_or_else(|| colon_help(s))?;
            let pattern = parts.next();
            let size: u32 = size
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("invalid size '{size}' in date-time format '{s}': expected a positive whole number"))?;
            let unit = TimeUnit::parse(unit)?;
            let kind = match fmt.to_ascii_uppercase().as_str() {
                "EPOCH" => TimeFormat::Epoch,
                "TIMESTAMP" => TimeFormat::Timestamp,
                "SIMPLE_DATE_FORMAT" => {
                    let p = pattern.ok_or_else(|| {
                        format!("missing pattern in date-time format '{s}': expected e.g. 1:DAYS:SIMPLE_DATE_FORMAT:yyyyMMdd")
                    })?;
                    sdf(p)
                }
                other => {
                    return Err(format!(
                        "unknown time format '{other}' in '{s}', expected EPOCH, TIMESTAMP or SIMPLE_DATE_FORMAT"
                    ))
                }
            };
            Ok(DateTimeFormat { size, unit, kind })
        } else {
            let parts: Vec<&str> = s.split('|').collect();
            match parts[0].to_ascii_uppercase().as_str() {
                "EPOCH" => {
                    let unit = match parts.get(1) {
                        Some(u) => TimeUnit::parse(u)?,
                        None => TimeUnit::Milliseconds,
                    };
                    let size = match parts.get(2) {
                        Some(n) => n
                            .trim()
                            .parse()
                            .ok()
                            .filter(|n| *n > 0)
                            .ok_or_else(|| format!("invalid size '{n}' in date-time format '{s}': expected a positive whole number"))?,
                        None => 1,
                    };
                    if parts.len() > 3 {
                        return Err(format!(
                            "too many parts in date-time format '{s}': expected EPOCH|unit|size"
                        ));
                    }
                    Ok(DateTimeFormat {
                        size,
                        unit,
                        kind: TimeFormat::Epoch,
                    })
                }
                "TIMESTAMP" => Ok(DateTimeFormat::timestamp()),
                "SIMPLE_DATE_FORMAT" => {
                    let pattern = parts.get(1).ok_or_else(|| {
                        format!("missing pattern in date-time format '{s}': expected e.g. 1:DAYS:SIMPLE_DATE_FORMAT:yyyyMMdd")
                    })?;
                    let zone = parts.get(2).map(|z| z.to_string()).unwrap_or("UTC".into());
                    Ok(DateTimeFormat {
                        size: 1,
                        unit: TimeUnit::Milliseconds,
                        kind: TimeFormat::SimpleDateFormat {
                            pattern: pattern.to_string(),
                            zone,
                        },
                    })
                }
                other => Err(format!(
                    "unknown date-time format '{other}' in '{s}', expected 'size:unit:format' \
                     or EPOCH|unit|size, SIMPLE_DATE_FORMAT|pattern, TIMESTAMP"
                )),
            }
        }
    }

    /// Converts epoch milliseconds to a value in this format, rounding down (epoch formats
    /// and TIMESTAMP only): the largest value whose time is at or before `ms`.
    pub fn millis_to_epoch(&self, ms: i64) -> Option<i64> {
        match self.kind {
            TimeFormat::Epoch => {
                let per = match self.unit {
                    TimeUnit::Nanoseconds | TimeUnit::Microseconds => {
                        let scale = if self.unit == TimeUnit::Nanoseconds {
                            1_000_000
                        } else {
                            1_000
                        };
                        return Some(ms.saturating_mul(scale) / self.size.max(1) as i64);
                    }
                    u => u.to_millis(1).saturating_mul(self.size.max(1) as i64),
                };
                Some(ms.div_euclid(per))
            }
            TimeFormat::Timestamp => Some(ms),
            TimeFormat::SimpleDateFormat { .. } => None,
        }
    }

    /// Whether this format counts whole days (`1:DAYS:EPOCH`, `EPOCH|DAYS`).
    pub fn is_days(&self) -> bool {
        self.kind == TimeFormat::Epoch && self.unit == TimeUnit::Days
    }

    /// Converts an epoch value in this format to epoch milliseconds (epoch formats only).
    pub fn epoch_to_millis(&self, v: i64) -> Option<i64> {
        match self.kind {
            TimeFormat::Epoch => Some(self.unit.to_millis(v.saturating_mul(self.size as i64))),
            TimeFormat::Timestamp => Some(v),
            TimeFormat::SimpleDateFormat { .. } => None,
        }
    }
}

fn sdf(p: &str) -> TimeFormat {
    // `pattern tz(Zone)` suffix.
    if let Some(idx) = p.find(" tz(") {
        let zone = p[idx + 4..].trim_end_matches(')').to_string();
        TimeFormat::SimpleDateFormat {
            pattern: p[..idx].to_string(),
            zone,
        }
    } else {
        TimeFormat::SimpleDateFormat {
            pattern: p.to_string(),
            zone: "UTC".into(),
        }
    }
}

fn colon_help(s: &str) -> String {
    format!("invalid date-time format '{s}', expected 'size:timeUnit:timeFormat[:pattern]' such as 1:MILLISECONDS:EPOCH")
}

/// A date-time granularity (`1:MILLISECONDS`, `MINUTES|15`, `DAYS`).
#[derive(Clone, Debug, PartialEq)]
pub struct Granularity {
    /// Size.
    pub size: u32,
    /// Unit.
    pub unit: TimeUnit,
}

impl Granularity {
    /// Parses colon or pipe syntax.
    pub fn parse(s: &str) -> Result<Granularity, String> {
        let s = s.trim();
        let (size, unit) = if let Some((a, b)) = s.split_once(':') {
            (a, b)
        } else if let Some((a, b)) = s.split_once('|') {
            (b, a)
        } else {
            ("1", s)
        };
        let size: u32 =
            size.trim().parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                format!("invalid granularity '{s}', expected e.g. 1:MILLISECONDS")
            })?;
        Ok(Granularity {
            size,
            unit: TimeUnit::parse(unit)?,
        })
    }
}

/// Parses Pinot's period syntax (`2d`, `6h`, `4h30m`, `10m`, `30s`) into milliseconds. Parts
/// come in the order d, h, m, s; each at most once.
pub fn parse_period_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total: i64 = 0;
    let mut num = String::new();
    let mut last_rank = 0;
    let mut saw_unit = false;
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    for c in body.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let (rank, ms) = match c.to_ascii_lowercase() {
            'd' => (1, 86_400_000),
            'h' => (2, 3_600_000),
            'm' => (3, 60_000),
            's' => (4, 1_000),
            _ => return None,
        };
        if num.is_empty() || rank <= last_rank {
            return None;
        }
        last_rank = rank;
        let n: i64 = num.parse().ok()?;
        total = total.checked_add(n.checked_mul(ms)?)?;
        num.clear();
        saw_unit = true;
    }
    if !num.is_empty() || !saw_unit {
        return None;
    }
    Some(if neg { -total } else { total })
}

/// Parses a period (`6h`) or plain milliseconds (`3600000`).
pub fn parse_period_or_millis(s: &str) -> Option<i64> {
    parse_period_ms(s).or_else(|| s.trim().parse::<i64>().ok())
}

/// Parses Pinot's data-size syntax `^\d+(\.\d+)?[KMGTP]?B?$` (case-insensitive, binary
/// multiples: `200M` = 209,715,200 bytes).
pub fn parse_data_size(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_uppercase();
    let t = t.strip_suffix('B').unwrap_or(&t);
    let (num, mult) = match t.chars().last()? {
        'K' => (&t[..t.len() - 1], 1u64 << 10),
        'M' => (&t[..t.len() - 1], 1 << 20),
        'G' => (&t[..t.len() - 1], 1 << 30),
        'T' => (&t[..t.len() - 1], 1 << 40),
        'P' => (&t[..t.len() - 1], 1 << 50),
        _ => (t, 1),
    };
    if num.is_empty()
        || !num.chars().all(|c| c.is_ascii_digit() || c == '.')
        || num.starts_with('.')
        || num.ends_with('.')
        || num.matches('.').count() > 1
    {
        return None;
    }
    let v: f64 = num.parse().ok()?;
    Some((v * mult as f64) as u64)
}

/// Letters Joda-Time accepts in a date-time pattern (Pinot parses SIMPLE_DATE_FORMAT
/// patterns with Joda); any other unquoted ASCII letter is an illegal pattern component.
const JODA_PATTERN_LETTERS: &str = "GCxyYMdahHkKmsSeEDwzZ";

/// Checks a SIMPLE_DATE_FORMAT pattern the way Pinot does for date-time field specs: only
/// Joda-Time pattern letters outside quotes, and the fields `y M d H m s S` in that order so
/// that values sort lexicographically in time order (`yyyyMMdd` is fine, `MM/dd/yyyy` is not).
pub fn validate_sdf_pattern(pattern: &str) -> Result<(), String> {
    if pattern.trim().is_empty() {
        return Err("empty SIMPLE_DATE_FORMAT pattern: expected a pattern such as yyyyMMdd".into());
    }
    let mut quoted = false;
    for c in pattern.chars() {
        if c == '\'' {
            quoted = !quoted;
        } else if !quoted && c.is_ascii_alphabetic() && !JODA_PATTERN_LETTERS.contains(c) {
            return Err(format!(
                "illegal letter '{c}' in SIMPLE_DATE_FORMAT pattern '{pattern}': expected \
                 Joda-Time pattern letters such as yyyy, MM, dd, HH, mm, ss, SSS (quote literal text)"
            ));
        }
    }
    let rank = |c: char| match c {
        'y' => 0,
        'M' => 1,
        'd' => 2,
        'H' => 3,
        'm' => 4,
        's' => 5,
        'S' => 6,
        _ => 7,
    };
    let mut last = [-1i64; 8];
    for (i, c) in pattern.chars().enumerate() {
        last[rank(c)] = i as i64;
    }
    for i in 0..6 {
        if !(last[i] <= last[i + 1] || last[i + 1] == -1) {
            return Err(format!(
                "the SIMPLE_DATE_FORMAT pattern '{pattern}' has to be sorted by both lexicographical and \
                 datetime order: expected the fields in the order yyyy MM dd HH mm ss SSS"
            ));
        }
        last[i + 1] = last[i + 1].max(last[i]);
    }
    Ok(())
}

/// Parses a TIMESTAMP value given as text: epoch milliseconds, `yyyy-MM-dd HH:mm:ss[.S...]`
/// (Java `Timestamp.valueOf`, read as UTC), ISO-8601 (`2024-01-02T03:04:05Z`,
/// `2024-01-02T03:04:05.123`) or a date `yyyy-MM-dd`.
pub fn parse_timestamp_millis(s: &str) -> Option<i64> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i64>() {
        return Some(n);
    }
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(t) {
        return Some(dt.timestamp_millis());
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(t, fmt) {
            return Some(dt.and_utc().timestamp_millis());
        }
    }
    chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|dt| dt.and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_formats() {
        let f = DateTimeFormat::parse("1:MILLISECONDS:EPOCH").expect("should parse");
        assert_eq!(f.kind, TimeFormat::Epoch);
        let f = DateTimeFormat::parse("EPOCH|DAYS").expect("should parse");
        assert_eq!((f.unit, f.size), (TimeUnit::Days, 1));
        assert_eq!(f.epoch_to_millis(2), Some(172_800_000));
        let f = DateTimeFormat::parse("1:DAYS:SIMPLE_DATE_FORMAT:yyyyMMdd tz(America/New_York)")
            .expect("should parse");
        assert_eq!(
            f.kind,
            TimeFormat::SimpleDateFormat {
                pattern: "yyyyMMdd".into(),
                zone: "America/New_York".into()
            }
        );
        assert!(DateTimeFormat::parse("1:FORTNIGHTS:EPOCH").is_err());
        assert!(DateTimeFormat::parse("EPOCH|MILLISECONDS|0").is_err());
        assert_eq!(
            Granularity::parse("MINUTES|15").expect("should parse").size,
            15
        );
    }

    #[test]
    fn test_periods_and_sizes() {
        assert_eq!(parse_period_ms("6h"), Some(21_600_000));
        assert_eq!(parse_period_ms("1h30m"), Some(5_400_000));
        assert_eq!(parse_period_ms("2d"), Some(172_800_000));
        assert_eq!(parse_period_ms("30m1h"), None);
        assert_eq!(parse_period_ms("6x"), None);
        assert_eq!(parse_period_or_millis("3600000"), Some(3_600_000));
        assert_eq!(parse_data_size("200M"), Some(209_715_200));
        assert_eq!(parse_data_size("50MB"), Some(52_428_800));
        assert_eq!(parse_data_size("1.5k"), Some(1536));
        assert_eq!(parse_data_size("12"), Some(12));
        assert_eq!(parse_data_size("lots"), None);
        assert_eq!(parse_data_size("M"), None);
        assert_eq!(parse_data_size("50Q"), None);
        assert_eq!(parse_data_size("100M"), Some(104_857_600));
        assert_eq!(parse_period_or_millis("6x"), None);
        assert_eq!(parse_period_or_millis("24h"), Some(86_400_000));
    }

    #[test]
    fn test_sdf_patterns_and_timestamps() {
        assert!(validate_sdf_pattern("yyyyMMdd").is_ok());
        assert!(validate_sdf_pattern("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'").is_ok());
        assert!(validate_sdf_pattern("MM/dd/yyyy").is_err());
        assert!(validate_sdf_pattern("yyyyMMddQ").is_err());
        assert!(validate_sdf_pattern("").is_err());
        assert_eq!(
            parse_timestamp_millis("1571900400000"),
            Some(1_571_900_400_000)
        );
        assert_eq!(parse_timestamp_millis("1970-01-01 00:00:01.5"), Some(1_500));
        assert_eq!(parse_timestamp_millis("1970-01-02"), Some(86_400_000));
        assert_eq!(
            parse_timestamp_millis("2022-08-09T12:31:38.222Z"),
            Some(1_660_048_298_222)
        );
        assert_eq!(parse_timestamp_millis("yesterday"), None);
    }
}
