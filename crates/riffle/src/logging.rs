//! The process log: one line per event on stderr, with every control character that a
//! logged value carries escaped, so that a value (a message, a name, an error from a
//! remote system) can neither start a forged line nor send terminal escape sequences.

use std::io::{self, Write};

/// Starts logging at the level `RIFFLE_LOG` names (default `info`).
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RIFFLE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(|| Escaping(io::stderr()))
        .init();
}

/// Writes each formatted event with its control characters escaped (`\n` as `\\n`, ESC as
/// `\\x1b`, ...), keeping only the newline that ends the event.
pub struct Escaping<W: Write>(pub W);

/// `line` with control characters escaped, but for one final `\n`.
pub fn escape_line(line: &[u8]) -> Vec<u8> {
    let (body, end) = match line.strip_suffix(b"\n") {
        Some(b) => (b, &b"\n"[..]),
        None => (line, &b""[..]),
    };
    let mut out = Vec::with_capacity(line.len() + 8);
    for &b in body {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.push(b'\t'),
            0..=0x1f | 0x7f => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out.extend_from_slice(end);
    out
}

impl<W: Write> Write for Escaping<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_all(&escape_line(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_but_the_final_newline() {
        let forged = b"INFO bad value: x\n2026-12-04T00:00:00Z  INFO forged\x1b[31m red\r\x00\n";
        let out = String::from_utf8(escape_line(forged)).unwrap_or_default();
        assert_eq!(
            out,
            "INFO bad value: x\\n2026-12-04T00:00:00Z  INFO forged\\x1b[31m red\\r\\x00\n"
        );
        assert_eq!(out.matches('\n').count(), 1);
        assert_eq!(escape_line("plain é\n".as_bytes()), "plain é\n".as_bytes());
    }

    #[test]
    fn a_whole_event_is_written_once() {
        let mut sink = Vec::new();
        Escaping(&mut sink).write_all(b"a\nb\n").unwrap_or_default();
        assert_eq!(sink, b"a\\nb\n");
    }
}
