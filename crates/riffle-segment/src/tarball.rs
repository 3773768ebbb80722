//! Segment tars: how a sealed segment travels between a push job, the controller, the deep
//! store and a server.
//!
//! Layout (Pinot's, with Riffle's file inside), gzip-compressed (`<segment>.tar.gz`):
//!
//! ```text
//! <segment>/v3/metadata.properties   segment.name, segment.table.name, segment.total.docs,
//!                                    segment.time.column.name, segment.start.time,
//!                                    segment.end.time, segment.time.unit (MILLISECONDS),
//!                                    segment.crc, segment.creation.time, segment.index.version
//! <segment>/v3/creation.meta         16 bytes, big-endian: CRC (i64), creation time ms (i64)
//! <segment>/v3/segment.riffle        the sealed segment file (docs/segment-format.md)
//! ```
//!
//! A metadata-only tar (Pinot's metadata push) has the first two files and no segment file.
//! Pinot's own segment files (`columns.psf`, `index_map`) are not read: a tar holding them
//! and no `segment.riffle` is refused by name.
//!
//! Reading never writes where an entry's path says: only the three names above are taken
//! (by their last path component), the segment file goes to the path the caller gives, and
//! each entry's size is bounded. gzip, zstd and plain tars are recognised by their magic
//! bytes, as Pinot does.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use crate::SegmentError;

/// The segment file's name inside a tar.
pub const SEGMENT_FILE: &str = "segment.riffle";
/// The metadata file's name inside a tar.
pub const METADATA_FILE: &str = "metadata.properties";
/// The creation-meta file's name inside a tar.
pub const CREATION_META_FILE: &str = "creation.meta";
/// Largest metadata file accepted.
const MAX_METADATA_BYTES: u64 = 1 << 20;

/// What a segment tar says about its segment.
#[derive(Clone, Debug, PartialEq)]
pub struct TarMeta {
    /// Segment name.
    pub segment_name: String,
    /// Raw table name the segment was built for.
    pub table_name: String,
    /// Rows.
    pub total_docs: u64,
    /// CRC32 of the segment file.
    pub crc: u32,
    /// When the segment was built (epoch ms).
    pub creation_time_ms: i64,
    /// The time column, if the table has one.
    pub time_column: Option<String>,
    /// Smallest time value (epoch ms).
    pub start_time_ms: Option<i64>,
    /// Largest time value (epoch ms).
    pub end_time_ms: Option<i64>,
    /// Every key of `metadata.properties` (the ones above included).
    pub properties: BTreeMap<String, String>,
}

impl TarMeta {
    /// The metadata of a segment just written for raw table `table`.
    pub fn of_sealed(
        table: &str,
        file: &crate::SealedFile,
        time_column: Option<&str>,
        creation_time_ms: i64,
    ) -> TarMeta {
        TarMeta {
            segment_name: file.info.name.clone(),
            table_name: table.to_string(),
            total_docs: file.info.total_docs,
            crc: file.crc,
            creation_time_ms,
            time_column: time_column.map(str::to_string),
            start_time_ms: file.info.start_time_ms,
            end_time_ms: file.info.end_time_ms,
            properties: BTreeMap::new(),
        }
    }

    /// The `metadata.properties` text.
    pub fn properties_text(&self) -> String {
        let mut p = self.properties.clone();
        let mut set = |k: &str, v: String| {
            p.insert(k.to_string(), v);
        };
        set("segment.name", self.segment_name.clone());
        set("segment.table.name", self.table_name.clone());
        set("segment.total.docs", self.total_docs.to_string());
        set("segment.crc", self.crc.to_string());
        set("segment.creation.time", self.creation_time_ms.to_string());
        set("segment.index.version", "v3".into());
        if let Some(t) = &self.time_column {
            set("segment.time.column.name", t.clone());
        }
        if let (Some(s), Some(e)) = (self.start_time_ms, self.end_time_ms) {
            set("segment.start.time", s.to_string());
            set("segment.end.time", e.to_string());
            set("segment.time.unit", "MILLISECONDS".into());
        }
        let mut out = String::new();
        for (k, v) in p {
            out.push_str(&escape(&k, true));
            out.push_str(" = ");
            out.push_str(&escape(&v, false));
            out.push('\n');
        }
        out
    }

    fn from_properties(props: BTreeMap<String, String>, at: &str) -> Result<TarMeta, String> {
        let get = |k: &str| -> Result<&String, String> {
            props
                .get(k)
                .ok_or_else(|| format!("{at}: {METADATA_FILE} has no '{k}'"))
        };
        let num = |k: &str| -> Result<Option<i64>, String> {
            props
                .get(k)
                .map(|v| {
                    v.trim().parse::<i64>().map_err(|_| {
                        format!("{at}: {METADATA_FILE}: '{k}' = '{v}' is not a number")
                    })
                })
                .transpose()
        };
        let unit_ms = match props.get("segment.time.unit").map(|u| u.trim()) {
            None | Some("MILLISECONDS") => 1,
            Some("SECONDS") => 1_000,
            Some("MINUTES") => 60_000,
            Some("HOURS") => 3_600_000,
            Some("DAYS") => 86_400_000,
            Some(u) => return Err(format!("{at}: unknown segment.time.unit '{u}'")),
        };
        let total_docs = num("segment.total.docs")?
            .filter(|n| *n >= 0)
            .ok_or_else(|| format!("{at}: {METADATA_FILE} has no valid 'segment.total.docs'"))?;
        let crc = num("segment.crc")?
            .and_then(|c| u32::try_from(c).ok())
            .ok_or_else(|| {
                format!("{at}: the tar has no {CREATION_META_FILE} with the segment's CRC")
            })?;
        Ok(TarMeta {
            segment_name: get("segment.name")?.clone(),
            table_name: get("segment.table.name")?.clone(),
            total_docs: total_docs as u64,
            crc,
            creation_time_ms: num("segment.creation.time")?.unwrap_or(0),
            time_column: props.get("segment.time.column.name").cloned(),
            start_time_ms: num("segment.start.time")?.map(|v| v.saturating_mul(unit_ms)),
            end_time_ms: num("segment.end.time")?.map(|v| v.saturating_mul(unit_ms)),
            properties: props,
        })
    }
}

/// Writes `<meta.segment_name>.tar.gz` at `out` (to a temporary file, then renamed): the
/// metadata files and, with `segment`, the segment file. Returns the tar's size.
pub fn write_tar(meta: &TarMeta, segment: Option<&Path>, out: &Path) -> Result<u64, SegmentError> {
    let io = |what: &str, e: std::io::Error| SegmentError::Io {
        segment: meta.segment_name.clone(),
        reason: format!("{what} {}: {e}", out.display()),
    };
    let tmp = out.with_extension("tar.gz.partial");
    let file = File::create(&tmp).map_err(|e| io("create", e))?;
    let gz = flate2::write::GzEncoder::new(BufWriter::new(file), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let dir = format!("{}/v3", meta.segment_name);
    let mut add = |name: &str, bytes: &[u8]| -> std::io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_mtime((meta.creation_time_ms.max(0) / 1000) as u64);
        tar.append_data(&mut h, format!("{dir}/{name}"), bytes)
    };
    add(METADATA_FILE, meta.properties_text().as_bytes()).map_err(|e| io("write", e))?;
    let mut creation = Vec::with_capacity(16);
    creation.extend_from_slice(&i64::from(meta.crc).to_be_bytes());
    creation.extend_from_slice(&meta.creation_time_ms.to_be_bytes());
    add(CREATION_META_FILE, &creation).map_err(|e| io("write", e))?;
    if let Some(seg) = segment {
        let mut f = File::open(seg).map_err(|e| SegmentError::Io {
            segment: meta.segment_name.clone(),
            reason: format!("open {}: {e}", seg.display()),
        })?;
        let len = f.metadata().map_err(|e| io("stat", e))?.len();
        let mut h = tar::Header::new_gnu();
        h.set_size(len);
        h.set_mode(0o644);
        h.set_mtime((meta.creation_time_ms.max(0) / 1000) as u64);
        tar.append_data(&mut h, format!("{dir}/{SEGMENT_FILE}"), &mut f)
            .map_err(|e| io("write", e))?;
    }
    let gz = tar.into_inner().map_err(|e| io("write", e))?;
    let mut w = gz.finish().map_err(|e| io("write", e))?;
    w.flush().map_err(|e| io("write", e))?;
    let file = w.into_inner().map_err(|e| io("write", e.into_error()))?;
    file.sync_all().map_err(|e| io("sync", e))?;
    drop(file);
    std::fs::rename(&tmp, out).map_err(|e| io("rename to", e))?;
    std::fs::metadata(out)
        .map(|m| m.len())
        .map_err(|e| io("stat", e))
}

/// Reads a segment tar at `tar`: its metadata and, when `segment_out` is given, the segment
/// file written there (a tar without one is then an error). `what` names the tar in errors
/// (a file name, an upload). Nothing but `segment_out` is written.
pub fn read_tar(
    tar: &Path,
    what: &str,
    segment_out: Option<&Path>,
) -> Result<TarMeta, SegmentError> {
    let corrupt = |reason: String| SegmentError::Corrupt {
        segment: what.to_string(),
        reason,
    };
    let mut f = File::open(tar).map_err(|e| SegmentError::Io {
        segment: what.to_string(),
        reason: format!("open {}: {e}", tar.display()),
    })?;
    let mut magic = [0u8; 4];
    let n = read_up_to(&mut f, &mut magic).map_err(|e| corrupt(format!("read: {e}")))?;
    let f = File::open(tar).map_err(|e| corrupt(format!("open: {e}")))?;
    let reader: Box<dyn Read> = match &magic[..n] {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(f))),
        [0x28, 0xb5, 0x2f, 0xfd] => Box::new(
            zstd::stream::read::Decoder::new(f).map_err(|e| corrupt(format!("zstd: {e}")))?,
        ),
        _ => Box::new(BufReader::new(f)),
    };
    read_entries(reader, what, segment_out).map_err(corrupt)
}

fn read_entries(
    reader: Box<dyn Read>,
    what: &str,
    segment_out: Option<&Path>,
) -> Result<TarMeta, String> {
    let mut archive = tar::Archive::new(reader);
    let mut props: Option<BTreeMap<String, String>> = None;
    let mut creation: Option<(i64, i64)> = None;
    let mut wrote_segment = false;
    let mut saw_pinot_files = false;
    let entries = archive
        .entries()
        .map_err(|e| format!("not a segment tar: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("not a segment tar: {e}"))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()
            .map_err(|e| format!("bad entry name: {e}"))?
            .into_owned();
        let Some(file) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        match file {
            METADATA_FILE => {
                let size = entry.header().size().unwrap_or(u64::MAX);
                if size > MAX_METADATA_BYTES {
                    return Err(format!("{METADATA_FILE} is {size} bytes, more than 1 MiB"));
                }
                let mut text = String::new();
                entry
                    .read_to_string(&mut text)
                    .map_err(|e| format!("{METADATA_FILE}: {e}"))?;
                props = Some(parse_properties(&text));
            }
            CREATION_META_FILE => {
                let mut b = [0u8; 16];
                entry
                    .read_exact(&mut b)
                    .map_err(|e| format!("{CREATION_META_FILE} is shorter than 16 bytes: {e}"))?;
                let crc = i64::from_be_bytes(b[..8].try_into().unwrap_or_default());
                let time = i64::from_be_bytes(b[8..].try_into().unwrap_or_default());
                creation = Some((crc, time));
            }
            SEGMENT_FILE => {
                let Some(out) = segment_out else { continue };
                let mut w = File::create(out)
                    .map(BufWriter::new)
                    .map_err(|e| format!("create {}: {e}", out.display()))?;
                std::io::copy(&mut entry, &mut w)
                    .map_err(|e| format!("{SEGMENT_FILE} is truncated or unreadable: {e}"))?;
                let f = w.into_inner().map_err(|e| format!("write: {e}"))?;
                f.sync_all().map_err(|e| format!("sync: {e}"))?;
                wrote_segment = true;
            }
            "columns.psf" | "index_map" => saw_pinot_files = true,
            _ => {}
        }
    }
    let mut props = props.ok_or_else(|| format!("the tar has no {METADATA_FILE}"))?;
    // The CRC and creation time live in creation.meta (Pinot keeps them nowhere else).
    if let Some((crc, time)) = creation {
        let crc = u32::try_from(crc)
            .map_err(|_| format!("{CREATION_META_FILE}: CRC {crc} is not a CRC32"))?;
        props.insert("segment.crc".into(), crc.to_string());
        props.insert("segment.creation.time".into(), time.to_string());
    }
    let meta = TarMeta::from_properties(props, METADATA_FILE)?;
    if segment_out.is_some() && !wrote_segment {
        return Err(if saw_pinot_files {
            format!("segment '{}' is in Pinot's own segment format (columns.psf), which Riffle does not read; build it with Riffle (riffle CreateSegment or LaunchDataIngestionJob)", meta.segment_name)
        } else {
            format!("the tar {what} holds no {SEGMENT_FILE}")
        });
    }
    Ok(meta)
}

/// Whether the file at `path` is a (gzip, zstd or plain) tar rather than a segment file.
pub fn is_tar(path: &Path) -> std::io::Result<bool> {
    let mut f = File::open(path)?;
    let mut head = [0u8; 262];
    let n = read_up_to(&mut f, &mut head)?;
    Ok(matches!(
        head[..n.min(4)],
        [0x1f, 0x8b, ..] | [0x28, 0xb5, 0x2f, 0xfd]
    ) || (n >= 262 && &head[257..262] == b"ustar"))
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Java properties text: `key = value` / `key: value` / `key value` lines, `#` and `!`
/// comments, backslash escapes and continuation lines.
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut logical = String::new();
    for line in text.lines() {
        let l = line.trim_start();
        if logical.is_empty() && (l.is_empty() || l.starts_with('#') || l.starts_with('!')) {
            continue;
        }
        let trailing = l.chars().rev().take_while(|c| *c == '\\').count();
        if trailing % 2 == 1 {
            logical.push_str(&l[..l.len() - 1]);
            continue;
        }
        logical.push_str(l);
        let (k, v) = split_property(&logical);
        out.insert(k, v);
        logical.clear();
    }
    if !logical.is_empty() {
        let (k, v) = split_property(&logical);
        out.insert(k, v);
    }
    out
}

fn split_property(line: &str) -> (String, String) {
    let mut key = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    key.push(unescape(n));
                }
            }
            '=' | ':' => break,
            c if c.is_whitespace() => {
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                if matches!(chars.peek(), Some('=') | Some(':')) {
                    chars.next();
                }
                break;
            }
            c => key.push(c),
        }
    }
    while chars.peek().is_some_and(|c| c.is_whitespace()) {
        chars.next();
    }
    let mut value = String::new();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                value.push(unescape(n));
            }
        } else {
            value.push(c);
        }
    }
    (key, value)
}

fn unescape(c: char) -> char {
    match c {
        't' => '\t',
        'n' => '\n',
        'r' => '\r',
        'f' => '\u{c}',
        c => c,
    }
}

fn escape(s: &str, key: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '=' | ':' | '#' | '!' if key => {
                out.push('\\');
                out.push(c);
            }
            ' ' if key || i == 0 => out.push_str("\\ "),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> TarMeta {
        TarMeta {
            segment_name: "t_0".into(),
            table_name: "t".into(),
            total_docs: 3,
            crc: 12345,
            creation_time_ms: 1_700_000_000_000,
            time_column: Some("ts".into()),
            start_time_ms: Some(1000),
            end_time_ms: Some(5000),
            properties: BTreeMap::new(),
        }
    }

    #[test]
    fn a_tar_round_trips_its_metadata_and_segment_file() {
        let dir = tempfile::tempdir().unwrap();
        let seg = dir.path().join("in.seg");
        std::fs::write(&seg, b"segment bytes").unwrap();
        let tar = dir.path().join("t_0.tar.gz");
        write_tar(&meta(), Some(&seg), &tar).unwrap();
        let out = dir.path().join("out.seg");
        let back = read_tar(&tar, "t_0.tar.gz", Some(&out)).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"segment bytes");
        assert_eq!(back.segment_name, "t_0");
        assert_eq!(back.crc, 12345);
        assert_eq!(
            (back.start_time_ms, back.end_time_ms),
            (Some(1000), Some(5000))
        );
        // A metadata-only tar has no segment file.
        let m = dir.path().join("m.tar.gz");
        write_tar(&meta(), None, &m).unwrap();
        assert_eq!(read_tar(&m, "m", None).unwrap().total_docs, 3);
        let err = read_tar(&m, "m", Some(&out)).unwrap_err().to_string();
        assert!(err.contains("holds no segment.riffle"), "{err}");
    }

    #[test]
    fn garbage_and_truncated_tars_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let seg = dir.path().join("in.seg");
        std::fs::write(&seg, vec![7u8; 100_000]).unwrap();
        let tar = dir.path().join("t.tar.gz");
        write_tar(&meta(), Some(&seg), &tar).unwrap();
        let bytes = std::fs::read(&tar).unwrap();
        let cut = dir.path().join("cut.tar.gz");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let out = dir.path().join("o.seg");
        assert!(read_tar(&cut, "cut", Some(&out)).is_err());
        let junk = dir.path().join("junk");
        std::fs::write(&junk, b"\x1f\x8bnot gzip at all").unwrap();
        assert!(read_tar(&junk, "junk", Some(&out)).is_err());
        std::fs::write(&junk, b"plain garbage that is no tar").unwrap();
        let err = read_tar(&junk, "junk", Some(&out)).unwrap_err().to_string();
        assert!(err.contains("junk"), "{err}");
    }

    #[test]
    fn properties_follow_java_syntax() {
        let p = parse_properties(
            "# c\n! c\na=1\nb : 2\nc 3\nd = x\\\n  y\ne\\ f = g\\=h\n  k=  spaced\n",
        );
        assert_eq!(p["a"], "1");
        assert_eq!(p["b"], "2");
        assert_eq!(p["c"], "3");
        assert_eq!(p["d"], "xy");
        assert_eq!(p["e f"], "g=h");
        assert_eq!(p["k"], "spaced");
        let m = TarMeta {
            table_name: "we=ird: name".into(),
            ..meta()
        };
        let back = parse_properties(&m.properties_text());
        assert_eq!(back["segment.table.name"], "we=ird: name");
    }
}
