//! Pinot configuration as users write it: schema JSON, table-config JSON and the flat
//! stream-config map.
//!
//! Owns:
//! - [`Schema`] and [`Column`]: field specs, data types, Pinot's default null values and
//!   date-time formats (colon and pipe syntax).
//! - [`TableConfig`]: the document as written ([`TableDocument`], every key kept so a config
//!   round-trips; [`TableConfig::unrecognized`] reports keys Pinot would not know) and its
//!   typed views, computed once when it is parsed: the [`riffle_common::TableName`], the
//!   stream configs, the index settings ([`IndexConfig`], the one reading of Pinot's index
//!   names and aliases), the field configs and the retention.
//! - [`StreamConfig`]: the stream map with Pinot's keys, aliases and defaults, the flush
//!   policy ([`FlushConfig`]) and offset criteria ([`OffsetCriteria`]). Class names go
//!   through Pinot's aliases (kafka20/kafka2/kafka3 factories become kafka30, the Kafka JSON
//!   decoder becomes `JSONMessageDecoder`); [`decoder_supported`] says whether Riffle can
//!   decode a class, but validation leaves that decision to the server.
//! - Validation ([`TableConfig::validate`], [`Schema::validate`]): what Pinot's controller
//!   rejects (PINOT-SPEC §1.12, §4, §5), each with the JSON path of the offending key.
//!   `tests/data/invalid_configs.json` lists the rejections with their paths and messages.
//!
//! Invariants: parsing never panics on any input; every rejection is a [`ConfigError`] whose
//! `path` is the JSON path of the offending value and whose message says what was expected.

pub mod datetime;
pub mod error;
pub mod index;
pub mod schema;
pub mod secrets;
pub mod stream;
pub mod table;

pub use datetime::{DateTimeFormat, Granularity, TimeFormat, TimeUnit};
pub use error::ConfigError;
pub use index::{Codec, Encoding, FieldConfig, IndexConfig, IndexType, LoadMode};
pub use schema::{Column, DataType, DefaultValue, FieldSpec, FieldType, Schema};
pub use stream::{
    decoder_supported, DataLossPolicy, DeadLetterConfig, FlushConfig, OffsetAutoReset,
    OffsetCriteria, StreamConfig, StreamMap,
};
pub use table::{Retention, TableConfig, TableDocument};
