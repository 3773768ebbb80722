//! A minimal RESP2 client: commands as arrays of bulk strings, replies parsed into
//! [`Reply`]. One connection, one request at a time.

use std::time::Duration;

use riffle_stream::{StreamError, StreamErrorKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The largest bulk string or array accepted from the server.
const MAX_LEN: i64 = 512 * 1024 * 1024;
/// The deepest nesting of arrays accepted.
const MAX_DEPTH: usize = 8;

/// A reply.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// `+OK`.
    Status(String),
    /// `-ERR ...`.
    Error(String),
    /// `:42`.
    Int(i64),
    /// `$n` bytes.
    Bulk(Vec<u8>),
    /// `*n` replies.
    Array(Vec<Reply>),
    /// `$-1` or `*-1`.
    Nil,
}

impl Reply {
    /// The bytes of a bulk or status reply.
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Reply::Bulk(b) => Some(b),
            Reply::Status(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    /// The text of a bulk or status reply.
    pub fn text(&self) -> Option<String> {
        self.bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

/// A connection to a Redis server.
pub struct Connection {
    stream: BufReader<TcpStream>,
    address: String,
}

fn io_error(what: &str, e: std::io::Error) -> StreamError {
    StreamError::new(StreamErrorKind::Transient, format!("redis {what}: {e}"))
}

fn protocol(msg: String) -> StreamError {
    StreamError::new(
        StreamErrorKind::Transient,
        format!("redis protocol error: {msg}"),
    )
}

/// Encodes a command.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

impl Connection {
    /// Connects, authenticates (`AUTH [user] password`) and selects `db`.
    pub async fn open(
        address: &str,
        auth: Option<(Option<&str>, &str)>,
        db: u32,
        timeout: Duration,
    ) -> Result<Connection, StreamError> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(address))
            .await
            .map_err(|_| {
                StreamError::new(
                    StreamErrorKind::Timeout,
                    format!("redis connect to {address} timed out"),
                )
            })?
            .map_err(|e| io_error(&format!("connect to {address}"), e))?;
        let _ = stream.set_nodelay(true);
        let mut c = Connection {
            stream: BufReader::new(stream),
            address: address.to_string(),
        };
        if let Some((user, password)) = auth {
            let mut args: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(u) = user {
                args.push(u.as_bytes());
            }
            args.push(password.as_bytes());
            if let Reply::Error(e) = c.call(&args, timeout).await? {
                return Err(StreamError::new(
                    StreamErrorKind::Unauthorized,
                    format!("redis AUTH refused: {e}"),
                ));
            }
        }
        if db != 0 {
            let n = db.to_string();
            if let Reply::Error(e) = c.call(&[b"SELECT", n.as_bytes()], timeout).await? {
                return Err(StreamError::config(format!(
                    "redis SELECT {db} failed: {e}"
                )));
            }
        }
        Ok(c)
    }

    /// Sends a command and reads its reply within `timeout`.
    pub async fn call(&mut self, args: &[&[u8]], timeout: Duration) -> Result<Reply, StreamError> {
        let bytes = encode(args);
        let address = self.address.clone();
        let work = async {
            self.stream
                .get_mut()
                .write_all(&bytes)
                .await
                .map_err(|e| io_error("write", e))?;
            self.read_reply(0).await
        };
        tokio::time::timeout(timeout, work).await.map_err(|_| {
            StreamError::new(
                StreamErrorKind::Timeout,
                format!(
                    "redis {address}: no reply within {} ms",
                    timeout.as_millis()
                ),
            )
        })?
    }

    async fn line(&mut self) -> Result<String, StreamError> {
        riffle_stream::wire::read_line(&mut self.stream, "redis").await
    }

    fn read_reply(
        &mut self,
        depth: usize,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Reply, StreamError>> + Send + '_>>
    {
        Box::pin(async move {
            if depth > MAX_DEPTH {
                return Err(protocol("arrays nested too deep".into()));
            }
            let line = self.line().await?;
            let (kind, rest) = line.split_at(line.len().min(1));
            let int = |s: &str| {
                s.parse::<i64>()
                    .map_err(|_| protocol(format!("'{s}' is not a length")))
            };
            match kind {
                "+" => Ok(Reply::Status(rest.to_string())),
                "-" => Ok(Reply::Error(rest.to_string())),
                ":" => Ok(Reply::Int(int(rest)?)),
                "$" => {
                    let n = int(rest)?;
                    if n < 0 {
                        return Ok(Reply::Nil);
                    }
                    if n > MAX_LEN {
                        return Err(protocol(format!("a bulk string of {n} bytes")));
                    }
                    let mut buf = vec![0u8; n as usize + 2];
                    self.stream
                        .read_exact(&mut buf)
                        .await
                        .map_err(|e| io_error("read", e))?;
                    buf.truncate(n as usize);
                    Ok(Reply::Bulk(buf))
                }
                "*" => {
                    let n = int(rest)?;
                    if n < 0 {
                        return Ok(Reply::Nil);
                    }
                    if n > MAX_LEN {
                        return Err(protocol(format!("an array of {n} elements")));
                    }
                    let mut items = Vec::with_capacity((n as usize).min(1024));
                    for _ in 0..n {
                        items.push(self.read_reply(depth + 1).await?);
                    }
                    Ok(Reply::Array(items))
                }
                other => Err(protocol(format!("unknown reply type '{other}'"))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_encode() {
        assert_eq!(
            encode(&[b"XRANGE", b"s", b"-", b"+"]),
            b"*4\r\n$6\r\nXRANGE\r\n$1\r\ns\r\n$1\r\n-\r\n$1\r\n+\r\n".to_vec()
        );
    }
}
