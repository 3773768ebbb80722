//! Shared vocabulary of every Riffle crate.
//!
//! Owns:
//! - the error model ([`error`]): [`ErrorKind`], the one place where a kind of failure is
//!   mapped to an HTTP status, a Pinot query error code and a retry decision, and
//!   [`ClassifyError`], which every library error implements;
//! - typed names ([`name`]): [`TableName`] and [`TableNameWithType`], parsed once where a
//!   name enters and the only way to a table's directory; [`PartitionId`]; Pinot's
//!   low-level-consumer [`SegmentName`] (`table__partition__sequence__yyyyMMddTHHmmZ`);
//! - [`StreamOffset`] ([`offset`]), the one offset type from stream plugins to the catalog;
//! - the node's thread pools ([`runtime`]);
//! - the clock and Pinot's date formats ([`time`]), hex;
//! - crash points for tests ([`failpoint`], behind the `failpoints` feature) and crash-safe
//!   file publishing ([`fsync`]).
//!
//! Invariants: an `ErrorKind` maps to exactly one HTTP status, one Pinot code and one retry
//! decision; a parsed table name is one plain path component; segment names round-trip
//! through [`SegmentName::parse`] and `Display`; an offset's string form round-trips.

pub mod error;
pub mod failpoint;
pub mod fsync;
pub mod name;
pub mod offset;
pub mod runtime;
pub mod time;

pub use error::{chain, BoxError, ClassifyError, ErrorKind};
pub use failpoint::failpoint;
pub use name::{
    check_segment_name, split_table_name, NameError, PartitionId, SegmentName, TableName,
    TableNameWithType, TableType,
};
pub use offset::StreamOffset;
pub use runtime::{AsyncPool, Pool, PoolError, RuntimeConfig, Runtimes};
pub use time::{civil_from_ms, format_compact_utc, format_pinot_timestamp, now_ms};

/// Lower-case hex of bytes: how Pinot shows BYTES values and converts BYTES to STRING.
pub fn hex_encode(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(D[(x >> 4) as usize] as char);
        s.push(D[(x & 15) as usize] as char);
    }
    s
}

/// Decodes lower- or upper-case hex; `None` on odd length or a non-hex digit.
pub fn hex_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if b.len() % 2 != 0 {
        return None;
    }
    let nib = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    b.chunks(2)
        .map(|p| Some(nib(p[0])? << 4 | nib(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_hex_round_trip() {
        assert_eq!(hex_encode(&[0x0a, 0xff, 0]), "0aff00");
        assert_eq!(hex_decode("0AfF00"), Some(vec![0x0a, 0xff, 0]));
        assert_eq!(hex_decode("abc"), None);
        assert_eq!(hex_decode("zz"), None);
    }
}
