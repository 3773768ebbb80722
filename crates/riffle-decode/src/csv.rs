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
        let props = &config.decoder_props;
        let format = props
            .get("fileFormat")
            .map(|f| f.to_ascii_uppercase())
            .unwrap_or_else(|| "DEFAULT".into());
        let mut builder = ::csv::ReaderBuilder::new();
        builder.has_headers(false).flexible(true);
        let mut null_string = None;
        let mut delimiter = b',';
        match format.as_str() {
            "DEFAULT" | "RFC4180" | "EXCEL" => {}
            "TDF" => delimiter = b'\t',
            "MYSQL" => {
                delimiter = b'\t';
                builder.quoting(false).escape(Some(b'\\'));
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
        if let Some(c) = props.get("commentMarker") {
            builder.comment(Some(one_byte("commentMarker", c)?));
        }
        if let Some(e) = props.get("escapeCharacter") {
            builder.escape(Some(one_byte("escapeCharacter", e)?));
        }
        if let Some(q) = props.get("quoteCharacter") {
            builder.quote(one_byte("quoteCharacter", q)?);
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

impl MessageDecoder for CsvDecoder {
    fn decode(&mut self, msg: &StreamMessage, out: &mut BlockBuilder) -> Result<(), DecodeError> {
        let mut reader = self.builder.from_reader(&msg.value[..]);
        let read = |reader: &mut ::csv::Reader<&[u8]>, rec: &mut ::csv::ByteRecord| {
            reader
                .read_byte_record(rec)
                .map_err(|e| DecodeError::new(format!("not a CSV record: {e}")))
        };
        if let Some(header) = self.header.take() {
            let r = match read(&mut reader, &mut self.record) {
                Ok(true) => self.write(out, &header),
                Ok(false) => Err(DecodeError::new("empty message: expected a CSV record")),
                Err(e) => Err(e),
            };
            self.header = Some(header);
            return r;
        }
        // No configured header: the message's own header line comes first.
        if !read(&mut reader, &mut self.record)? {
            return Err(DecodeError::new(
                "empty message: expected a header line and a record",
            ));
        }
        let header: Vec<Option<usize>> = self
            .record
            .iter()
            .map(|n| {
                std::str::from_utf8(n)
                    .ok()
                    .and_then(|n| self.fields.get(n.trim()).copied())
            })
            .collect();
        if !read(&mut reader, &mut self.record)? {
            return Err(DecodeError::new("empty message: expected a CSV record"));
        }
        self.write(out, &header)
    }
}
