//! The clock and the date formats Pinot shows.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `yyyyMMddTHHmmZ` in UTC for an epoch-millisecond instant.
pub fn format_compact_utc(ms: i64) -> String {
    let (y, mo, d, h, mi, _s, _ms) = civil_from_ms(ms);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}Z")
}

/// `yyyy-MM-dd HH:mm:ss.S` (Java `Timestamp.toString`), the form Pinot uses for TIMESTAMP
/// values in query responses. Fraction digits: as many as needed, at least one.
pub fn format_pinot_timestamp(ms: i64) -> String {
    let (y, mo, d, h, mi, s, frac) = civil_from_ms(ms);
    let mut frac_str = format!("{frac:03}");
    while frac_str.len() > 1 && frac_str.ends_with('0') {
        frac_str.pop();
    }
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{frac_str}")
}

/// Splits epoch milliseconds into UTC calendar fields (proleptic Gregorian).
pub fn civil_from_ms(ms: i64) -> (i64, u32, u32, u32, u32, u32, u32) {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (h, mi, s, frac) = (
        (rem / 3_600_000) as u32,
        ((rem / 60_000) % 60) as u32,
        ((rem / 1000) % 60) as u32,
        (rem % 1000) as u32,
    );
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = if m <= 2 { y + 1 } else { y };
    (y, m, d, h, mi, s, frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_pinot_timestamp_format() {
        assert_eq!(format_pinot_timestamp(0), "1970-01-01 00:00:00.0");
        assert_eq!(
            format_pinot_timestamp(1_388_534_400_123),
            "2014-01-01 00:00:00.123"
        );
        assert_eq!(format_pinot_timestamp(-1), "1969-12-31 23:59:59.999");
    }
}
