//! Pinot's `CSVMessageDecoder`: one CSV record per message.
//!
//! Decoder props (`stream.<t>.decoder.prop.<name>`), as Pinot's:
//! - `header`: the column names, separated by the delimiter. Without it, each message
//!   carries its own header line before its record.
//! - `delimiter` (default `,`), `multiValueDelimiter` (default `;`), `commentMarker`,
//!   `escapeCharacter`, `nullStringValue` (a field equal to it is null); `fileFormat`
//!   `DEFAULT` / `RFC4180` / `EXCEL` / `MYSQL` (tab-separated, `\N` is null) / `TDF`
//!   (tab-separated).
//!
//! Values, as Pinot reads them: an empty field is null (the column's default); a field
//! holding the multi-value delimiter is several values. Riffle splits only fields of
//! multi-value columns (and source fields that transforms read): a single-value text
//! column keeps its delimiter characters, where Pinot would fail the row. Text converts to
//! the column's type as the JSON decoder converts text. A message that is not one valid
//! record is malformed, naming what is wrong.

use std::collections::HashMap;
use std::sync::Arc;

use riffle_config::StreamConfig;
use riffle_segment::{BlockBuilder, TableColumns};
use riffle_stream::StreamMessage;

use crate::json::{field_map, put_text};
use crate::{DecodeError, DecodeTarget, MessageDecoder};

pub use riffle_config::stream::CSV_DECODER;

/// The CSV decoder for one table.
pub struct CsvDecoder {
    builder: ::csv::ReaderBuilder,
    /// The configured header: each position's column (or source field).
    header: Option<Vec<Option<usize>>>,
    fields: HashMap<String, usize>,
    mv_delimiter: char,
    null_string: Option<String>,
    record: ::csv::ByteRecord,
    /// The same settings as `builder`, as one parser reused for every message (building a
    /// parser costs far more than parsing one record).
    core: csv_core::Reader,
    /// The parser's field bytes and field ends.
    out: Vec<u8>,
    ends: Vec<usize>,
    /// The last header line a message carried, and its columns.
    last_header: Option<(::csv::ByteRecord, Vec<Option<usize>>)>,
}

fn one_byte(key: &str, v: &str) -> Result<u8, DecodeError> {
    let mut chars = v.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii() => Ok(c as u8),
        _ => Err(DecodeError::new(format!(
            "decoder.prop.{key} must be one ASCII character, got '{v}'"
        ))),
    }
}

impl CsvDecoder {
    /// A decoder from the stream's decoder props.
    pub fn new(
        config: &StreamConfig,
        columns: &Arc<TableColumns>,
        target: &DecodeTarget,
    ) -> Result<CsvDecoder, DecodeError> {
        CsvDecoder::from_props(&config.decoder_props, columns, target)
    }

    /// A decoder from its props (a stream's decoder props, a file reader's configs).
    pub fn from_props(
        props: &std::collections::BTreeMap<String, String>,
        columns: &Arc<TableColumns>,
        target: &DecodeTarget,
    ) -> Result<CsvDecoder, DecodeError> {
        let format = props
            .get("fileFormat")
            .map(|f| f.to_ascii_uppercase())
            .unwrap_or_else(|| "DEFAULT".into());
        let mut builder = ::csv::ReaderBuilder::new();
        let mut core = csv_core::ReaderBuilder::new();
        builder.has_headers(false).flexible(true);
        let mut null_string = None;
        let mut delimiter = b',';
        match format.as_str() {
            "DEFAULT" | "RFC4180" | "EXCEL" => {}
            "TDF" => delimiter = b'\t',
            "MYSQL" => {
                delimiter = b'\t';
                builder.quoting(false).escape(Some(b'\\'));
                core.quoting(false).escape(Some(b'\\'));
                null_string = Some("\\N".to_string());
            }
            other => {
                return Err(DecodeError::new(format!(
                    "decoder.prop.fileFormat '{other}' is not one of DEFAULT, RFC4180, EXCEL, MYSQL, TDF"
                )))
            }
        }
        if let Some(d) = props.get("delimiter") {
            delimiter = one_byte("delimiter", d)?;
        }
        builder.delimiter(delimiter);
        core.delimiter(delimiter);
        if let Some(c) = props.get("commentMarker") {
            builder.comment(Some(one_byte("commentMarker", c)?));
            core.comment(Some(one_byte("commentMarker", c)?));
        }
        if let Some(e) = props.get("escapeCharacter") {
            builder.escape(Some(one_byte("escapeCharacter", e)?));
            core.escape(Some(one_byte("escapeCharacter", e)?));
        }
        if let Some(q) = props.get("quoteCharacter") {
            builder.quote(one_byte("quoteCharacter", q)?);
            core.quote(one_byte("quoteCharacter", q)?);
        }
        if let Some(n) = props.get("nullStringValue") {
            null_string = Some(n.clone());
        }
        let mv_delimiter = match props.get("multiValueDelimiter") {
            Some(d) => one_byte("multiValueDelimiter", d)? as char,
            None => ';',
        };
        let fields = field_map(columns, &target.extras);
        let header = props.get("header").map(|h| {
            h.split(delimiter as char)
                .map(|n| fields.get(n.trim()).copied())
                .collect()
        });
        Ok(CsvDecoder {
            builder,
            header,
            fields,
            mv_delimiter,
            null_string,
            record: ::csv::ByteRecord::new(),
            core: core.build(),
            out: vec![0; 1024],
            ends: vec![0; 64],
            last_header: None,
        })
    }

    fn write(&self, out: &mut BlockBuilder, header: &[Option<usize>]) -> Result<(), DecodeError> {
        let n = out.columns().columns.len();
        for (pos, col) in header.iter().enumerate() {
            let (Some(col), Some(raw)) = (*col, self.record.get(pos)) else {
                continue;
            };
            let text = std::str::from_utf8(raw)
                .map_err(|_| DecodeError::new(format!("field {} is not UTF-8 text", pos + 1)))?;
            if text.is_empty() || self.null_string.as_deref() == Some(text) {
                continue;
            }
            if col >= n {
                let v = if text.contains(self.mv_delimiter) {
                    serde_json::Value::Array(
                        text.split(self.mv_delimiter)
                            .filter(|t| !t.is_empty())
                            .map(|t| serde_json::Value::String(t.to_string()))
                            .collect(),
                    )
                } else {
                    serde_json::Value::String(text.to_string())
                };
                out.push_extra(col - n, v);
                continue;
            }
            out.unset(col);
            if out.is_multi_value(col) {
                out.push_list_start(col);
                for item in text.split(self.mv_delimiter).filter(|t| !t.is_empty()) {
                    put_text(out, col, item, true)?;
                }
                out.push_list_end(col);
            } else {
                put_text(out, col, text, false)?;
            }
        }
        Ok(())
    }
}

impl CsvDecoder {
    /// A reader of CSV text with these settings (no header handling: callers do it).
    pub(crate) fn reader_builder(&self) -> &::csv::ReaderBuilder {
        &self.builder
    }

    /// The configured header's column positions, if one is configured.
    pub(crate) fn configured_header(&self) -> Option<Vec<Option<usize>>> {
        self.header.clone()
    }

    /// The column positions of a header line's names.
    pub(crate) fn header_of(&self, names: &::csv::ByteRecord) -> Vec<Option<usize>> {
        names
            .iter()
            .map(|n| {
                std::str::from_utf8(n).ok().and_then(|n| {
                    self.fields
                        .get(n.trim().trim_start_matches('\u{feff}'))
                        .copied()
                })
            })
            .collect()
    }

    /// Writes one record into the current row of `out` (without ending it).
    pub(crate) fn write_record(
        &mut self,
        rec: &mut ::csv::ByteRecord,
        header: &[Option<usize>],
        out: &mut BlockBuilder,
    ) -> Result<(), DecodeError> {
        std::mem::swap(&mut self.record, rec);
        let r = self.write(out, header);
        std::mem::swap(&mut self.record, rec);
        r
    }
}

impl CsvDecoder {
    /// Parses the next record of `input` from `*pos` into `self.record`; false when the
    /// input holds no more records.
    fn next_record(&mut self, input: &[u8], pos: &mut usize) -> Result<bool, DecodeError> {
        use csv_core::ReadRecordResult as R;
        let (mut n_out, mut n_ends) = (0, 0);
        loop {
            let (res, nin, nout, nend) = self.core.read_record(
                &input[*pos..],
                &mut self.out[n_out..],
                &mut self.ends[n_ends..],
            );
            *pos += nin;
            n_out += nout;
            n_ends += nend;
            match res {
                R::InputEmpty => {}
                R::OutputFull => {
                    if self.out.len() >= input.len().max(1024) * 2 + 1024 {
                        return Err(DecodeError::new(
                            "not a CSV record: a field larger than the message",
                        ));
                    }
                    let n = self.out.len() * 2;
                    self.out.resize(n, 0);
                }
                R::OutputEndsFull => {
                    let n = self.ends.len() * 2;
                    self.ends.resize(n, 0);
                }
                R::Record => {
                    self.record.clear();
                    let mut start = 0;
                    for &end in &self.ends[..n_ends] {
                        self.record.push_field(&self.out[start..end]);
                        start = end;
                    }
                    return Ok(true);
                }
                R::End => return Ok(false),
            }
        }
    }
}

impl MessageDecoder for CsvDecoder {
    fn decode(&mut self, msg: &StreamMessage, out: &mut BlockBuilder) -> Result<(), DecodeError> {
        self.core.reset();
        let input = &msg.value[..];
        let mut pos = 0;
        if let Some(header) = self.header.take() {
            let r = match self.next_record(input, &mut pos) {
                Ok(true) => self.write(out, &header),
                Ok(false) => Err(DecodeError::new("empty message: expected a CSV record")),
                Err(e) => Err(e),
            };
            self.header = Some(header);
            return r;
        }
        // No configured header: the message's own header line comes first.
        if !self.next_record(input, &mut pos)? {
            return Err(DecodeError::new(
                "empty message: expected a header line and a record",
            ));
        }
        // Messages of one topic carry the same header: its positions are looked up once.
        let header = match self.last_header.take() {
            Some((names, positions)) if names == self.record => (names, positions),
            _ => (self.record.clone(), self.header_of(&self.record)),
        };
        let r = match self.next_record(input, &mut pos) {
            Ok(true) => self.write(out, &header.1),
            Ok(false) => Err(DecodeError::new("empty message: expected a CSV record")),
            Err(e) => Err(e),
        };
        self.last_header = Some(header);
        r
    }
}
