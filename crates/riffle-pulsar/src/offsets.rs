//! Pulsar positions as [`StreamOffset`]s.
//!
//! A message's offset is `<ledger>:<entry>:<index>`, with the entry padded to 20 digits and
//! the index in its batch (0 for a message sent alone) to 6, so that offsets order as the
//! messages do ([`StreamOffset`] compares text by its leading number, the ledger, then the
//! rest as text). Its next offset is the next index of the same batch, or index 0 of the next
//! entry. `-1` is the beginning of the partition (a partition with no message yet). Pinot
//! writes message ids as the hex of their protobuf; Riffle's form is its own, kept in its
//! catalog.

use riffle_stream::StreamOffset;

/// A position: ledger, entry, index in the entry's batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// The ledger.
    pub ledger: u64,
    /// The entry in the ledger.
    pub entry: u64,
    /// The message in the entry's batch.
    pub index: u32,
}

/// The offset of the beginning of a partition.
pub const EARLIEST: StreamOffset = StreamOffset::Long(-1);

impl Position {
    /// The offset of this position.
    pub fn offset(&self) -> StreamOffset {
        StreamOffset::parse(&format!(
            "{}:{:020}:{:06}",
            self.ledger, self.entry, self.index
        ))
    }

    /// The position after the message at `self` in an entry of `batch` messages.
    pub fn next(&self, batch: u32) -> Position {
        if self.index + 1 < batch {
            Position {
                index: self.index + 1,
                ..*self
            }
        } else {
            Position {
                entry: self.entry.saturating_add(1),
                index: 0,
                ..*self
            }
        }
    }

    /// The position an offset names: `None` for [`EARLIEST`], an error for anything that is
    /// not an offset of this plugin.
    pub fn of(offset: &StreamOffset) -> Result<Option<Position>, String> {
        if offset == &EARLIEST {
            return Ok(None);
        }
        let s = offset.to_string();
        let mut parts = s.split(':');
        let (Some(l), Some(e), Some(i), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(format!(
                "offset '{s}' is not a pulsar position (<ledger>:<entry>:<index>)"
            ));
        };
        match (l.parse::<u64>(), e.parse::<u64>(), i.parse::<u32>()) {
            (Ok(ledger), Ok(entry), Ok(index)) => Ok(Some(Position {
                ledger,
                entry,
                index,
            })),
            _ => Err(format!(
                "offset '{s}' is not a pulsar position (<ledger>:<entry>:<index>)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_offsets_order_round_trip_and_parse() {
        let p = |ledger, entry, index| Position {
            ledger,
            entry,
            index,
        };
        let order = [
            p(0, 0, 0),
            p(0, 0, 1),
            p(0, 9, 0),
            p(0, 10, 0),
            p(1, 0, 0),
            p(12, 3, 0),
        ];
        for w in order.windows(2) {
            assert!(
                w[0].offset() < w[1].offset(),
                "{} < {}",
                w[0].offset(),
                w[1].offset()
            );
            assert!(w[0] < w[1]);
        }
        assert!(EARLIEST < p(0, 0, 0).offset());
        for q in order {
            let o = q.offset();
            assert_eq!(StreamOffset::parse(&o.to_string()), o);
            assert_eq!(Position::of(&o).unwrap(), Some(q));
        }
        assert_eq!(Position::of(&EARLIEST).unwrap(), None);
        assert_eq!(p(3, 4, 1).next(3), p(3, 4, 2));
        assert_eq!(p(3, 4, 2).next(3), p(3, 5, 0));
        assert_eq!(p(3, 4, 0).next(1), p(3, 5, 0));
        for bad in ["1:2", "a:b:c", "1:2:3:4", "5"] {
            assert!(Position::of(&StreamOffset::parse(bad)).is_err(), "{bad}");
        }
    }
}
