//! [`StreamOffset`]: a position in a stream partition, the one offset type from the stream
//! plugins through the consuming segment and the catalog to the lag reported by the API.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A position in a partition. Kafka and the file stream use integers; other streams (Kinesis
/// sequence numbers, Pulsar message ids) use text. Integers compare numerically; text made
/// only of decimal digits (big sequence numbers) compares numerically too, by length then
/// digits; other text compares lexicographically. A partition uses one kind of offset.
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
        match (self, other) {
            (StreamOffset::Long(a), StreamOffset::Long(b)) => a.cmp(b),
            (StreamOffset::Text(a), StreamOffset::Text(b)) => {
                let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
                if digits(a) && digits(b) {
                    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
                    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
                } else {
                    a.cmp(b)
                }
            }
            (StreamOffset::Long(_), StreamOffset::Text(_)) => std::cmp::Ordering::Less,
            (StreamOffset::Text(_), StreamOffset::Long(_)) => std::cmp::Ordering::Greater,
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
    }
}
