//! Kinesis positions as [`StreamOffset`]s.
//!
//! - A record's offset is its sequence number (a decimal of up to 128 digits, kept as
//!   text unless it fits an `i64`); its `next_offset` is the same number followed by `+`,
//!   "after this record". Kinesis only finds positions by a record's exact sequence number
//!   (`AT_SEQUENCE_NUMBER`, `AFTER_SEQUENCE_NUMBER`), so no arithmetic is done on them;
//!   `StreamOffset` orders text by its leading number first, so `S < S+ < the next record`.
//! - A negative integer `-t` means "the first record that arrived at or after epoch
//!   millisecond `t`" (`AT_TIMESTAMP`). It is what `largest` (`t` = now) and a time
//!   criteria no record has reached resolve to: stored in the catalog, it names the same
//!   records after a restart, which a `LATEST` iterator would not.

use riffle_stream::StreamOffset;

use crate::client::IteratorStart;

/// What an offset asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Position {
    /// The record with this sequence number and those after it.
    At(String),
    /// The records after the one with this sequence number.
    After(String),
    /// The first record arriving at or after this epoch millisecond.
    AtTime(i64),
}

impl Position {
    /// The position an offset names, or `None` for text that is not one of the forms above.
    pub fn of(offset: &StreamOffset) -> Option<Position> {
        match offset {
            StreamOffset::Long(n) if *n < 0 => Some(Position::AtTime(n.saturating_neg())),
            StreamOffset::Long(n) => Some(Position::At(n.to_string())),
            StreamOffset::Text(s) => match s.strip_suffix('+') {
                Some(seq) if is_sequence(seq) => Some(Position::After(seq.to_string())),
                None if is_sequence(s) => Some(Position::At(s.to_string())),
                _ => None,
            },
        }
    }

    /// The iterator start.
    pub fn start(&self) -> IteratorStart {
        match self {
            Position::At(s) => IteratorStart::At(s.clone()),
            Position::After(s) => IteratorStart::After(s.clone()),
            Position::AtTime(t) => IteratorStart::AtTimestamp(*t),
        }
    }
}

/// The offset of "the first record at or after epoch millisecond `t`".
pub fn at_time(t_ms: i64) -> StreamOffset {
    StreamOffset::Long(-t_ms.max(1))
}

/// The offset of the record with sequence number `seq`.
pub fn sequence(seq: &str) -> StreamOffset {
    StreamOffset::parse(seq)
}

/// The offset after the record with sequence number `seq`.
pub fn after(seq: &str) -> StreamOffset {
    StreamOffset::parse(&format!("{seq}+"))
}

/// Whether text is a sequence number: decimal digits only.
pub fn is_sequence(s: &str) -> bool {
    !s.is_empty() && s.len() <= 129 && s.bytes().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_offsets_order_and_round_trip() {
        let a = "49590338271490256608559692538361571095921575989136588898";
        let b = "49590338271490256608559692538361571095921575989136588950";
        let (oa, na, ob) = (sequence(a), after(a), sequence(b));
        assert!(oa < na && na < ob, "{oa} {na} {ob}");
        assert!(at_time(1_700_000_000_000) < oa);
        for o in [&oa, &na, &ob, &at_time(5), &sequence("42"), &after("9")] {
            assert_eq!(&StreamOffset::parse(&o.to_string()), o);
        }
        assert!(sequence("9") < after("9") && after("9") < sequence("10"));
        assert_eq!(Position::of(&oa), Some(Position::At(a.into())));
        assert_eq!(Position::of(&na), Some(Position::After(a.into())));
        assert_eq!(Position::of(&at_time(5)), Some(Position::AtTime(5)));
        assert_eq!(
            Position::of(&sequence("42")),
            Some(Position::At("42".into()))
        );
        assert_eq!(
            Position::of(&after("42")),
            Some(Position::After("42".into()))
        );
        for bad in ["shard-1:4", "12++", "+", "1x+"] {
            assert_eq!(Position::of(&StreamOffset::parse(bad)), None, "{bad}");
        }
    }
}
