//! What the Avro and Protocol Buffers readers share: base-128 varints (Avro adds zig-zag)
//! and taking a counted run of bytes.

/// Why a varint could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VarintError {
    /// The data ends inside it.
    Truncated,
    /// More than 10 bytes.
    TooLong,
}

/// The unsigned varint at `*pos`; `*pos` moves past it.
#[inline]
pub(crate) fn read(data: &[u8], pos: &mut usize) -> Result<u64, VarintError> {
    let mut v: u64 = 0;
    for shift in (0..70).step_by(7) {
        let b = *data.get(*pos).ok_or(VarintError::Truncated)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift.min(63);
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(VarintError::TooLong)
}

/// The `n` bytes at `*pos` (`*pos` moves past them), or `None` when they run past the data.
#[inline]
pub(crate) fn take<'a>(data: &'a [u8], pos: &mut usize, n: usize) -> Option<&'a [u8]> {
    let end = pos.checked_add(n).filter(|e| *e <= data.len())?;
    let s = &data[*pos..end];
    *pos = end;
    Some(s)
}

/// Zig-zag decoding: 0, 1, 2, 3 ... to 0, -1, 1, -2 ...
#[inline]
pub(crate) fn zigzag(v: u64) -> i64 {
    (v >> 1) as i64 ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        let mut pos = 0;
        assert_eq!(read(&[0xac, 0x02, 0x01], &mut pos), Ok(300));
        assert_eq!(pos, 2);
        assert_eq!(read(&[0x80], &mut 0), Err(VarintError::Truncated));
        assert_eq!(read(&[0xff; 11], &mut 0), Err(VarintError::TooLong));
        assert_eq!((zigzag(0), zigzag(1), zigzag(2), zigzag(3)), (0, -1, 1, -2));
    }
}
