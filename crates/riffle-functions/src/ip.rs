//! Pinot's IP address functions, for IPv4 and IPv6 text.
//!
//! | Function | Result | Meaning (Pinot's) |
//! | --- | --- | --- |
//! | `ISSUBNETOF(prefix, address)` | BOOLEAN | whether `address` is inside the CIDR `prefix` (`'192.168.0.0/16'`) |
//! | `IPPREFIX(address, bits)` | STRING | the CIDR prefix of `address` with `bits` bits (`'192.168.1.0/24'`) |
//! | `IPSUBNETMIN(prefix)`, `IPSUBNETMAX(prefix)` | STRING | the first and last address of the prefix |
//!
//! Text that is not an address or a prefix fails the query with the text named, as Pinot's
//! functions throw.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanBuilder, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// Which function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Op {
    IsSubnetOf,
    Prefix,
    SubnetMin,
    SubnetMax,
}

/// One IP function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct IpFn {
    name: &'static str,
    op: Op,
    signature: Signature,
}

/// Every IP function.
pub fn functions() -> Vec<ScalarUDF> {
    [
        ("issubnetof", Op::IsSubnetOf),
        ("ipprefix", Op::Prefix),
        ("ipsubnetmin", Op::SubnetMin),
        ("ipsubnetmax", Op::SubnetMax),
    ]
    .into_iter()
    .map(|(name, op)| {
        ScalarUDF::new_from_impl(IpFn {
            name,
            op,
            signature: Signature::variadic_any(Volatility::Immutable),
        })
    })
    .collect()
}

/// An address as a 128-bit number and its width (32 or 128).
fn bits_of(ip: IpAddr) -> (u128, u32) {
    match ip {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    }
}

fn ip_of(v: u128, width: u32) -> IpAddr {
    if width == 32 {
        IpAddr::V4(Ipv4Addr::from(v as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(v))
    }
}

/// The mask of the first `bits` of `width`.
fn mask(bits: u32, width: u32) -> u128 {
    let all = if width == 32 {
        u128::from(u32::MAX)
    } else {
        u128::MAX
    };
    // A shift by the whole width clears everything (`>>` would overflow at 128).
    all & !all.checked_shr(bits).unwrap_or(0)
}

/// Parses `address/bits`: the network (host bits cleared), the bits and the width.
pub fn parse_prefix(text: &str) -> std::result::Result<(u128, u32, u32), String> {
    let (addr, bits) = text
        .trim()
        .split_once('/')
        .ok_or_else(|| format!("'{text}' is not an IP prefix such as '10.0.0.0/8'"))?;
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| format!("'{addr}' in '{text}' is not an IP address"))?;
    let (v, width) = bits_of(ip);
    let bits: u32 = bits
        .parse()
        .ok()
        .filter(|b| *b <= width)
        .ok_or_else(|| format!("the prefix length in '{text}' must be 0 to {width}"))?;
    Ok((v & mask(bits, width), bits, width))
}

fn parse_ip(text: &str) -> std::result::Result<IpAddr, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("'{text}' is not an IP address"))
}

impl ScalarUDFImpl for IpFn {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let want = match self.op {
            Op::IsSubnetOf | Op::Prefix => 2,
            _ => 1,
        };
        if arg_types.len() != want {
            return exec_err!(
                "{} takes {want} argument(s), got {}",
                self.name,
                arg_types.len()
            );
        }
        Ok(match self.op {
            Op::IsSubnetOf => DataType::Boolean,
            _ => DataType::Utf8,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let first = cast(&arrays[0], &DataType::Utf8)?;
        let first = first.as_string::<i32>();
        let fail = |e: String| -> Result<ColumnarValue> { exec_err!("{}: {e}", self.name) };
        let out: ArrayRef = match self.op {
            Op::IsSubnetOf => {
                let addrs = cast(&arrays[1], &DataType::Utf8)?;
                let addrs = addrs.as_string::<i32>();
                let mut b = BooleanBuilder::with_capacity(rows);
                for i in 0..rows {
                    if first.is_null(i) || addrs.is_null(i) {
                        b.append_null();
                        continue;
                    }
                    let (net, bits, width) = match parse_prefix(first.value(i)) {
                        Ok(p) => p,
                        Err(e) => return fail(e),
                    };
                    let (v, w) = match parse_ip(addrs.value(i)) {
                        Ok(ip) => bits_of(ip),
                        Err(e) => return fail(e),
                    };
                    b.append_value(w == width && v & mask(bits, width) == net);
                }
                Arc::new(b.finish())
            }
            Op::Prefix => {
                let bits = cast(&arrays[1], &DataType::Int64)?;
                let bits = bits.as_primitive::<Int64Type>();
                let mut b = StringBuilder::with_capacity(rows, rows * 18);
                for i in 0..rows {
                    if first.is_null(i) || bits.is_null(i) {
                        b.append_null();
                        continue;
                    }
                    let (v, width) = match parse_ip(first.value(i)) {
                        Ok(ip) => bits_of(ip),
                        Err(e) => return fail(e),
                    };
                    let n = bits.value(i);
                    let Some(n) = u32::try_from(n).ok().filter(|n| *n <= width) else {
                        return fail(format!("the prefix length must be 0 to {width}, got {n}"));
                    };
                    b.append_value(format!("{}/{n}", ip_of(v & mask(n, width), width)));
                }
                Arc::new(b.finish())
            }
            Op::SubnetMin | Op::SubnetMax => {
                let mut b = StringBuilder::with_capacity(rows, rows * 16);
                for i in 0..rows {
                    if first.is_null(i) {
                        b.append_null();
                        continue;
                    }
                    let (net, bits, width) = match parse_prefix(first.value(i)) {
                        Ok(p) => p,
                        Err(e) => return fail(e),
                    };
                    let host = !mask(bits, width) & mask(width, width);
                    let v = if self.op == Op::SubnetMin {
                        net
                    } else {
                        net | host
                    };
                    b.append_value(ip_of(v, width).to_string());
                }
                Arc::new(b.finish())
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_membership() {
        let (net, bits, width) = parse_prefix("192.168.7.9/16").unwrap();
        assert_eq!(
            (ip_of(net, width).to_string(), bits, width),
            ("192.168.0.0".into(), 16, 32)
        );
        let inside = |p: &str, a: &str| {
            let (net, bits, width) = parse_prefix(p).unwrap();
            let (v, w) = bits_of(parse_ip(a).unwrap());
            w == width && v & mask(bits, width) == net
        };
        assert!(inside("192.168.0.0/16", "192.168.200.1"));
        assert!(!inside("192.168.0.0/16", "192.169.0.1"));
        assert!(inside("0.0.0.0/0", "8.8.8.8"));
        assert!(inside("2001:db8::/32", "2001:db8:ffff::1"));
        assert!(inside("2001:db8::1/128", "2001:db8::1"));
        assert!(!inside("2001:db8::1/128", "2001:db8::2"));
        assert!(inside("::/0", "2001:db8::2"));
        assert!(!inside("2001:db8::/32", "192.168.0.1"));
        assert!(parse_prefix("10.0.0.0/33").is_err());
        assert!(parse_prefix("10.0.0.0").is_err());
        assert!(parse_prefix("nope/8").is_err());
        let max = !mask(24, 32) & mask(32, 32);
        assert_eq!(ip_of(net | max, 32).to_string(), "192.168.0.255");
    }
}

#[cfg(test)]
mod sql_tests {
    use crate::sql_test::{error, first_row};

    #[tokio::test]
    async fn ip_functions_through_sql() {
        let got = first_row(
            "SELECT issubnetof('10.0.0.0/8', '10.20.30.40'), issubnetof('10.0.0.0/8', '11.0.0.1'), \
             ipprefix('192.168.1.77', 24), ipsubnetmin('192.168.1.77/24'), \
             ipsubnetmax('192.168.1.77/24'), ipsubnetmax('2001:db8::/120')",
        )
        .await;
        assert_eq!(
            got,
            [
                "true",
                "false",
                "192.168.1.0/24",
                "192.168.1.0",
                "192.168.1.255",
                "2001:db8::ff"
            ]
        );
        let e = error("SELECT issubnetof('10.0.0.0/40', '10.0.0.1')").await;
        assert!(e.contains("must be 0 to 32"), "{e}");
    }
}
