//! Stream entry IDs (`<ms>-<seq>`) as offsets, and the entries of `XRANGE` / `XREAD`
//! replies.

use riffle_stream::{StreamError, StreamErrorKind, StreamOffset};

use crate::resp::Reply;

/// An entry ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct EntryId {
    /// Milliseconds.
    pub ms: u64,
    /// Sequence within the millisecond.
    pub seq: u64,
}

impl EntryId {
    /// Parses `<ms>-<seq>` (the sequence padded or not).
    pub fn parse(s: &str) -> Option<EntryId> {
        let (ms, seq) = s.split_once('-')?;
        Some(EntryId {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }

    /// The ID as Redis writes it.
    pub fn redis(&self) -> String {
        format!("{}-{}", self.ms, self.seq)
    }

    /// The ID as an offset (the sequence padded so that offsets order as IDs).
    pub fn offset(&self) -> StreamOffset {
        StreamOffset::parse(&format!("{}-{:020}", self.ms, self.seq))
    }

    /// The next ID.
    pub fn next(&self) -> EntryId {
        match self.seq.checked_add(1) {
            Some(seq) => EntryId { ms: self.ms, seq },
            None => EntryId {
                ms: self.ms.saturating_add(1),
                seq: 0,
            },
        }
    }

    /// The ID before (`0-0` stays).
    pub fn prev(&self) -> EntryId {
        match (self.ms, self.seq) {
            (ms, 0) if ms > 0 => EntryId {
                ms: ms - 1,
                seq: u64::MAX,
            },
            (ms, 0) => EntryId { ms, seq: 0 },
            (ms, seq) => EntryId { ms, seq: seq - 1 },
        }
    }

    /// The ID an offset names.
    pub fn of(o: &StreamOffset) -> Result<EntryId, StreamError> {
        EntryId::parse(&o.to_string()).ok_or_else(|| {
            StreamError::new(
                StreamErrorKind::InvalidConfig,
                format!("offset '{o}' is not a redis stream entry id (<ms>-<seq>)"),
            )
        })
    }
}

pub(crate) fn reply_error(what: &str, e: String) -> StreamError {
    let kind = if e.starts_with("NOAUTH") || e.starts_with("WRONGPASS") || e.starts_with("NOPERM") {
        StreamErrorKind::Unauthorized
    } else if e.starts_with("WRONGTYPE") {
        StreamErrorKind::InvalidConfig
    } else {
        StreamErrorKind::Fatal
    };
    StreamError::new(kind, format!("redis {what} failed: {e}"))
}

/// One stream entry: its ID and field-value pairs.
pub(crate) type Entry = (EntryId, Vec<(Vec<u8>, Vec<u8>)>);

/// The entries of an `XRANGE` reply (an array of `[id, [field, value, ...]]`).
pub(crate) fn entries(what: &str, r: Reply) -> Result<Vec<Entry>, StreamError> {
    let bad = || {
        StreamError::new(
            StreamErrorKind::Fatal,
            format!("redis {what}: an unexpected reply"),
        )
    };
    let items = match r {
        Reply::Array(a) => a,
        Reply::Nil => return Ok(Vec::new()),
        Reply::Error(e) => return Err(reply_error(what, e)),
        _ => return Err(bad()),
    };
    let mut out = Vec::with_capacity(items.len());
    for it in items {
        let Reply::Array(mut pair) = it else {
            return Err(bad());
        };
        if pair.len() != 2 {
            return Err(bad());
        }
        let fields = pair.pop().ok_or_else(bad)?;
        let id = pair
            .pop()
            .and_then(|i| i.text())
            .and_then(|t| EntryId::parse(&t))
            .ok_or_else(bad)?;
        let mut kv = Vec::new();
        if let Reply::Array(f) = fields {
            let mut it = f.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                kv.push((
                    k.bytes().unwrap_or_default().to_vec(),
                    v.bytes().unwrap_or_default().to_vec(),
                ));
            }
        }
        out.push((id, kv));
    }
    Ok(out)
}

/// The entries of an `XREAD` reply for one key.
pub(crate) fn xread_entries(r: Reply) -> Result<Vec<Entry>, StreamError> {
    match r {
        Reply::Nil => Ok(Vec::new()),
        Reply::Error(e) => Err(reply_error("XREAD", e)),
        Reply::Array(mut streams) => match streams.pop() {
            Some(Reply::Array(mut kv)) if kv.len() == 2 => {
                entries("XREAD", kv.pop().unwrap_or(Reply::Nil))
            }
            _ => Ok(Vec::new()),
        },
        _ => Err(StreamError::new(
            StreamErrorKind::Fatal,
            "redis XREAD: an unexpected reply",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_entry_ids_order_and_step() {
        let a = EntryId { ms: 5, seq: 9 };
        let b = EntryId { ms: 5, seq: 10 };
        let c = EntryId { ms: 6, seq: 0 };
        assert!(a.offset() < b.offset() && b.offset() < c.offset());
        assert_eq!(EntryId::of(&b.offset()).unwrap(), b);
        assert_eq!(a.next(), b);
        assert_eq!(
            c.prev(),
            EntryId {
                ms: 5,
                seq: u64::MAX
            }
        );
        assert_eq!(EntryId { ms: 0, seq: 0 }.prev(), EntryId { ms: 0, seq: 0 });
        assert_eq!(
            EntryId {
                ms: 1,
                seq: u64::MAX
            }
            .next(),
            EntryId { ms: 2, seq: 0 }
        );
        assert!(EntryId::of(&StreamOffset::parse("x")).is_err());
        assert_eq!(StreamOffset::parse(&a.offset().to_string()), a.offset());
    }
}
