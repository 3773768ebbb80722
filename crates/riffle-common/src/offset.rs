//! [`StreamOffset`]: a position in a stream partition, the one offset type from the stream
//! plugins through the consuming segment and the catalog to the lag reported by the API.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A position in a partition. Kafka and the file stream use integers; other streams (Kinesis
/// sequence numbers, Pulsar message ids) use text.
///
/// Order: negative integers first (the Kinesis plugin's "first record at or after a time"),
/// then numbers (integers, and text starting with decimal digits, compared by that number,
/// however long, and then by the text after it, so that Kinesis' `<sequence>+` "after this
/// record" sorts right after `<sequence>`), then other text, lexicographically. A partition
/// uses one kind of offset.
///
/// The string form (`Display` / [`StreamOffset::parse`]) is what the catalog stores (as a
/// JSON string) and must stay stable across versions.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StreamOffset {
    /// An integer offset.
    Long(i64),
    /// A textual offset.
    Text(Arc<str>),
}

impl StreamOffset {
    /// Parses the stored string form: a decimal integer becomes `Long`, anything else `Text`.
    pub fn parse(s: &str) -> StreamOffset {
        match s.parse::<i64>() {
            Ok(n) => StreamOffset::Long(n),
            Err(_) => StreamOffset::Text(Arc::from(s)),
        }
    }

    /// The integer value, if this is an integer offset.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            StreamOffset::Long(n) => Some(*n),
            StreamOffset::Text(_) => None,
        }
    }

    /// How far `later` is past this offset, for integer offsets (0 if it is not later);
    /// `None` for textual offsets, whose difference means nothing.
    pub fn distance_to(&self, later: &StreamOffset) -> Option<u64> {
        match (self, later) {
            (StreamOffset::Long(a), StreamOffset::Long(b)) => {
                Some(b.saturating_sub(*a).max(0) as u64)
            }
            _ => None,
        }
    }
}

impl From<&str> for StreamOffset {
    fn from(s: &str) -> StreamOffset {
        StreamOffset::parse(s)
    }
}

impl From<i64> for StreamOffset {
    fn from(n: i64) -> StreamOffset {
        StreamOffset::Long(n)
    }
}

impl fmt::Display for StreamOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamOffset::Long(n) => write!(f, "{n}"),
            StreamOffset::Text(s) => f.write_str(s),
        }
    }
}

impl PartialOrd for StreamOffset {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for StreamOffset {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if let (StreamOffset::Long(a), StreamOffset::Long(b)) = (self, other) {
            return a.cmp(b);
        }
        self.key().cmp(&other.key())
    }
}

/// How an offset sorts: see [`StreamOffset`].
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum SortKey<'a> {
    Negative(i64),
    /// Significant digits (no leading zeros): shorter is smaller, then digit by digit; then
    /// the text after the digits.
    Number(usize, std::borrow::Cow<'a, str>, &'a str),
    Other(&'a str),
}

impl StreamOffset {
    fn key(&self) -> SortKey<'_> {
        match self {
            StreamOffset::Long(n) if *n < 0 => SortKey::Negative(*n),
            StreamOffset::Long(n) => {
                let d = n.to_string();
                SortKey::Number(d.len(), d.into(), "")
            }
            StreamOffset::Text(s) => {
                let end = s
                    .bytes()
                    .position(|c| !c.is_ascii_digit())
                    .unwrap_or(s.len());
                if end == 0 {
                    return SortKey::Other(s);
                }
                let digits = s[..end].trim_start_matches('0');
                let digits = if digits.is_empty() { "0" } else { digits };
                SortKey::Number(digits.len(), digits.into(), &s[end..])
            }
        }
    }
}

impl Serialize for StreamOffset {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StreamOffset {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<StreamOffset, D::Error> {
        let s = String::deserialize(d)?;
        Ok(StreamOffset::parse(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_string_form_round_trips_through_json() {
        for o in [
            StreamOffset::Long(42),
            StreamOffset::parse("49590338271490256608559692538361571095921575989136588898"),
        ] {
            let json = serde_json::to_string(&o).unwrap();
            assert!(json.starts_with('"'), "{json}");
            let back: StreamOffset = serde_json::from_str(&json).unwrap();
            assert_eq!(back, o);
        }
    }

    #[test]
    fn test_order_and_distance() {
        assert!(StreamOffset::Long(9) < StreamOffset::Long(10));
        assert!(StreamOffset::parse("99") < StreamOffset::parse("100"));
        let big = |s: &str| StreamOffset::Text(Arc::from(s));
        assert!(big("0099999999999999999999") < big("100000000000000000000"));
        assert_eq!(
            StreamOffset::Long(5).distance_to(&StreamOffset::Long(12)),
            Some(7)
        );
        assert_eq!(
            StreamOffset::Long(12).distance_to(&StreamOffset::Long(5)),
            Some(0)
        );
        assert_eq!(big("a").distance_to(&big("b")), None);
        // Text that starts with a number sorts by it, then by what follows.
        assert!(big("123") < big("123+"));
        assert!(big("123+") < big("124"));
        assert!(big("999+") < big("1000"));
        assert!(StreamOffset::Long(7) < big("7+"));
        assert!(big("7+") < StreamOffset::Long(8));
        assert!(StreamOffset::Long(-5) < StreamOffset::Long(0));
        assert!(StreamOffset::Long(-5) < big("1"));
        assert!(big("99999999999999999999999") < big("x"));
        assert!(StreamOffset::Long(i64::MAX) < big("x"));
    }
}
