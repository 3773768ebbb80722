//! How a table's columns are indexed and stored, read once from the table config.
//!
//! Pinot lets a table ask for indexes in four places: the lists of `tableIndexConfig`
//! (`sortedColumn`, `invertedIndexColumns`, ...), its maps (`noDictionaryConfig`,
//! `bloomFilterConfigs`), and per column in `fieldConfigList` (`encodingType`, the legacy
//! `indexType`, `indexTypes`, and the newer `indexes` object whose entries may say
//! `"disabled": true`). [`IndexConfig::parse`] merges them into one answer per column, and
//! [`IndexType::parse`] is the only reading of Pinot's index names and their aliases.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::error::ConfigError;
use crate::stream::json_kind;
use crate::table::TableDocument;

/// `tableIndexConfig.loadMode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LoadMode {
    /// Memory-mapped (Pinot's default for realtime tables).
    #[default]
    Mmap,
    /// Read into memory.
    Heap,
}

impl LoadMode {
    /// `MMAP` or `HEAP` in any case.
    pub fn parse(s: &str) -> Option<LoadMode> {
        if s.eq_ignore_ascii_case("MMAP") {
            Some(LoadMode::Mmap)
        } else if s.eq_ignore_ascii_case("HEAP") {
            Some(LoadMode::Heap)
        } else {
            None
        }
    }
}

/// A kind of index, by any of the names Pinot accepts for it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum IndexType {
    /// Rows sorted by the column.
    Sorted,
    /// Inverted index (roaring bitmaps per value).
    Inverted,
    /// Range index.
    Range,
    /// Bloom filter.
    Bloom,
    /// The dictionary (in `indexes`, `"dictionary": {"disabled": true}` means raw).
    Dictionary,
    /// An index Pinot knows and Riffle does not build yet (JSON, text, FST, H3, vector,
    /// timestamp, ...), by its normalised name.
    Other(String),
}

impl IndexType {
    /// Reads an index name: `INVERTED`, `inverted`, `inverted_index`, `BLOOM_FILTER`,
    /// `bloomFilter`, `bloom`, ... Case, `_` and a trailing `index` / `filter` do not matter.
    pub fn parse(name: &str) -> IndexType {
        let mut n: String = name
            .chars()
            .filter(|c| *c != '_' && *c != '-')
            .flat_map(char::to_lowercase)
            .collect();
        for suffix in ["index", "filter"] {
            if n.len() > suffix.len() && n.ends_with(suffix) {
                n.truncate(n.len() - suffix.len());
            }
        }
        match n.as_str() {
            "sorted" => IndexType::Sorted,
            "inverted" => IndexType::Inverted,
            "range" => IndexType::Range,
            "bloom" => IndexType::Bloom,
            "dictionary" => IndexType::Dictionary,
            _ => IndexType::Other(n),
        }
    }
}

/// `encodingType` of a field config.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Encoding {
    /// Values through a dictionary (Pinot's default).
    #[default]
    Dictionary,
    /// Raw values, no dictionary.
    Raw,
}

/// One entry of `fieldConfigList`, as Riffle reads it (the document keeps the whole entry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldConfig {
    /// The column.
    pub name: String,
    /// `encodingType` (DICTIONARY when absent).
    pub encoding: Encoding,
    /// Whether `encodingType` was written.
    pub encoding_given: bool,
    /// Indexes asked for (`indexType`, `indexTypes`, enabled `indexes` entries), in order.
    pub indexes: Vec<IndexType>,
    /// `indexes` entries that say `"disabled": true`.
    pub disabled: Vec<IndexType>,
    /// Whether a `timestampConfig` is set.
    pub timestamp_config: bool,
    /// `compressionCodec` (or `indexes.forward.compressionCodec`), when given.
    pub compression: Option<Codec>,
}

/// How a column's stored values are compressed (Pinot's `compressionCodec`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Codec {
    /// `PASS_THROUGH`: not compressed.
    PassThrough,
    /// `LZ4` (Pinot's default for raw columns).
    Lz4,
    /// `ZSTANDARD`.
    Zstandard,
    /// `SNAPPY`.
    Snappy,
    /// `GZIP`.
    Gzip,
}

impl Codec {
    /// Pinot's name, or `None` for a codec Pinot names that Riffle does not implement
    /// (`MV_ENTRY_DICT`, `CLP...`, `DELTA`, `DELTADELTA`: such columns get the default).
    pub fn parse(s: &str) -> Result<Option<Codec>, String> {
        Ok(Some(match s.trim().to_ascii_uppercase().as_str() {
            "PASS_THROUGH" => Codec::PassThrough,
            "LZ4" | "LZ4_LENGTH_PREFIXED" => Codec::Lz4,
            "ZSTANDARD" | "ZSTD" => Codec::Zstandard,
            "SNAPPY" => Codec::Snappy,
            "GZIP" => Codec::Gzip,
            "MV_ENTRY_DICT" | "CLP" | "CLPV2" | "CLPV2_ZSTD" | "CLPV2_LZ4" | "DELTA"
            | "DELTADELTA" => return Ok(None),
            other => {
                return Err(format!(
                    "unknown compression codec '{other}': expected PASS_THROUGH, LZ4, ZSTANDARD, SNAPPY or GZIP"
                ))
            }
        }))
    }

    /// Pinot's name.
    pub fn name(self) -> &'static str {
        match self {
            Codec::PassThrough => "PASS_THROUGH",
            Codec::Lz4 => "LZ4",
            Codec::Zstandard => "ZSTANDARD",
            Codec::Snappy => "SNAPPY",
            Codec::Gzip => "GZIP",
        }
    }
}

impl FieldConfig {
    /// Whether the column is stored without a dictionary.
    pub fn is_raw(&self) -> bool {
        self.encoding == Encoding::Raw || self.disabled.contains(&IndexType::Dictionary)
    }
}

/// Reads `fieldConfigList`; errors name the JSON path.
pub(crate) fn parse_field_configs(list: Option<&Value>) -> Result<Vec<FieldConfig>, ConfigError> {
    let Some(list) = list.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let arr = list.as_array().ok_or_else(|| {
        ConfigError::new(
            "$.fieldConfigList",
            format!(
                "expected an array of field configs, got {}",
                json_kind(list)
            ),
        )
    })?;
    arr.iter()
        .enumerate()
        .map(|(i, fc)| parse_field_config(&format!("$.fieldConfigList[{i}]"), fc))
        .collect()
}

fn parse_field_config(p: &str, fc: &Value) -> Result<FieldConfig, ConfigError> {
    if !fc.is_object() {
        return Err(ConfigError::new(
            p,
            format!("expected a field config object, got {}", json_kind(fc)),
        ));
    }
    let name = fc.get("name").and_then(Value::as_str).ok_or_else(|| {
        ConfigError::new(
            format!("{p}.name"),
            "name is required: expected a column of the schema",
        )
    })?;
    let (encoding, encoding_given) = match fc.get("encodingType").filter(|v| !v.is_null()) {
        None => (Encoding::Dictionary, false),
        Some(Value::String(e)) if e == "DICTIONARY" => (Encoding::Dictionary, true),
        Some(Value::String(e)) if e == "RAW" => (Encoding::Raw, true),
        Some(other) => {
            return Err(ConfigError::new(
                format!("{p}.encodingType"),
                format!("unknown encoding type {other}: expected DICTIONARY or RAW"),
            ))
        }
    };
    let mut indexes = Vec::new();
    let mut disabled = Vec::new();
    if let Some(t) = fc.get("indexType").and_then(Value::as_str) {
        indexes.push(IndexType::parse(t));
    }
    let listed = fc.get("indexTypes").and_then(Value::as_array);
    for t in listed.into_iter().flatten().filter_map(Value::as_str) {
        indexes.push(IndexType::parse(t));
    }
    for (k, v) in fc
        .get("indexes")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let off = v.get("disabled").and_then(Value::as_bool).unwrap_or(false);
        match (IndexType::parse(k), off) {
            (t, true) => disabled.push(t),
            // An enabled dictionary is the default, not an index to build.
            (IndexType::Dictionary, false) => {}
            (t, false) => indexes.push(t),
        }
    }
    let codec_at = [
        (format!("{p}.compressionCodec"), fc.get("compressionCodec")),
        (
            format!("{p}.indexes.forward.compressionCodec"),
            fc.pointer("/indexes/forward/compressionCodec"),
        ),
    ];
    let mut compression = None;
    for (path, v) in codec_at {
        match v.filter(|v| !v.is_null()) {
            None => {}
            Some(Value::String(c)) => {
                compression = Codec::parse(c).map_err(|e| ConfigError::new(path, e))?;
            }
            Some(other) => {
                return Err(ConfigError::new(
                    path,
                    format!("expected a codec name, got {}", json_kind(other)),
                ))
            }
        }
    }
    Ok(FieldConfig {
        name: name.to_string(),
        encoding,
        encoding_given,
        indexes,
        disabled,
        timestamp_config: fc.get("timestampConfig").is_some_and(|t| !t.is_null()),
        compression,
    })
}

/// Every index and storage choice of a table, per column.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IndexConfig {
    /// `loadMode` (MMAP when absent).
    pub load_mode: LoadMode,
    /// The sorted column: `sortedColumn[0]`, else the first field config with a `sorted`
    /// index.
    pub sorted_column: Option<String>,
    /// Columns stored raw: `noDictionaryColumns`, `noDictionaryConfig` keys, field configs
    /// with `encodingType: RAW` or a disabled dictionary. (The sorted column keeps its
    /// dictionary regardless.)
    pub no_dictionary: BTreeSet<String>,
    /// Inverted-index columns.
    pub inverted: BTreeSet<String>,
    /// Range-index columns.
    pub range: BTreeSet<String>,
    /// Bloom-filter columns (`bloomFilterColumns`, `bloomFilterConfigs` keys, field
    /// configs).
    pub bloom: BTreeSet<String>,
    /// Columns with a `compressionCodec` in their field config.
    pub compression: std::collections::BTreeMap<String, Codec>,
}

impl IndexConfig {
    /// Merges the table's index settings. `fields` is the parsed `fieldConfigList`.
    pub(crate) fn parse(
        doc: &TableDocument,
        fields: &[FieldConfig],
    ) -> Result<IndexConfig, ConfigError> {
        let ic = &doc.table_index_config;
        let load_mode = match ic.load_mode.as_deref() {
            None => LoadMode::Mmap,
            Some(s) => LoadMode::parse(s).ok_or_else(|| {
                ConfigError::new(
                    "$.tableIndexConfig.loadMode",
                    format!("unknown load mode '{s}': expected MMAP or HEAP"),
                )
            })?,
        };
        let list = |v: &Option<Vec<String>>| -> BTreeSet<String> {
            v.iter()
                .flatten()
                .filter(|c| !c.trim().is_empty())
                .cloned()
                .collect()
        };
        let keys = |v: Option<&Value>| -> Vec<String> {
            v.and_then(Value::as_object)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default()
        };
        let mut o = IndexConfig {
            load_mode,
            sorted_column: ic
                .sorted_column
                .as_ref()
                .and_then(|v| v.first())
                .filter(|c| !c.trim().is_empty())
                .cloned(),
            no_dictionary: list(&ic.no_dictionary_columns),
            inverted: list(&ic.inverted_index_columns),
            range: list(&ic.range_index_columns),
            bloom: list(&ic.bloom_filter_columns),
            compression: Default::default(),
        };
        o.no_dictionary
            .extend(keys(ic.extra.get("noDictionaryConfig")));
        o.bloom.extend(keys(ic.extra.get("bloomFilterConfigs")));
        let mut sorted_from_fields = None;
        for fc in fields {
            if fc.is_raw() {
                o.no_dictionary.insert(fc.name.clone());
            }
            if let Some(c) = fc.compression {
                o.compression.insert(fc.name.clone(), c);
            }
            for t in &fc.indexes {
                let set = match t {
                    IndexType::Inverted => &mut o.inverted,
                    IndexType::Range => &mut o.range,
                    IndexType::Bloom => &mut o.bloom,
                    IndexType::Sorted => {
                        sorted_from_fields.get_or_insert(fc.name.clone());
                        continue;
                    }
                    IndexType::Dictionary | IndexType::Other(_) => continue,
                };
                set.insert(fc.name.clone());
            }
        }
        if o.sorted_column.is_none() {
            o.sorted_column = sorted_from_fields;
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_index_names_and_aliases_read_one_way() {
        for n in ["INVERTED", "inverted", "inverted_index", "invertedIndex"] {
            assert_eq!(IndexType::parse(n), IndexType::Inverted, "{n}");
        }
        for n in [
            "BLOOM_FILTER",
            "bloom",
            "bloomFilter",
            "bloom_filter",
            "BLOOMFILTER",
        ] {
            assert_eq!(IndexType::parse(n), IndexType::Bloom, "{n}");
        }
        assert_eq!(IndexType::parse("RANGE"), IndexType::Range);
        assert_eq!(IndexType::parse("sorted"), IndexType::Sorted);
        assert_eq!(IndexType::parse("dictionary"), IndexType::Dictionary);
        assert_eq!(
            IndexType::parse("json_index"),
            IndexType::Other("json".into())
        );
        assert_eq!(IndexType::parse("TEXT"), IndexType::Other("text".into()));
    }

    #[test]
    fn test_field_configs_merge_into_the_index_config() {
        let fields = parse_field_configs(Some(&serde_json::json!([
            {"name": "a", "encodingType": "RAW"},
            {"name": "b", "indexTypes": ["INVERTED", "RANGE"]},
            {"name": "c", "indexes": {"bloom": {}, "dictionary": {"disabled": true}, "inverted": {"disabled": true}}},
            {"name": "d", "indexType": "SORTED"}
        ])))
        .unwrap();
        let doc: TableDocument = serde_json::from_value(serde_json::json!({
            "tableName": "t", "tableType": "OFFLINE", "segmentsConfig": {}, "tenants": {},
            "tableIndexConfig": {"invertedIndexColumns": ["x"], "noDictionaryConfig": {"y": "SNAPPY"}, "loadMode": "heap"}
        }))
        .unwrap();
        let ic = IndexConfig::parse(&doc, &fields).unwrap();
        assert_eq!(ic.load_mode, LoadMode::Heap);
        assert_eq!(ic.sorted_column.as_deref(), Some("d"));
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(ic.no_dictionary, set(&["a", "c", "y"]));
        assert_eq!(ic.inverted, set(&["b", "x"]));
        assert_eq!(ic.range, set(&["b"]));
        assert_eq!(ic.bloom, set(&["c"]));
    }

    #[test]
    fn test_compression_codecs_are_read_from_either_place() {
        let fields = parse_field_configs(Some(&serde_json::json!([
            {"name": "a", "encodingType": "RAW", "compressionCodec": "ZSTANDARD"},
            {"name": "b", "indexes": {"forward": {"compressionCodec": "lz4"}}},
            {"name": "c", "compressionCodec": "CLPV2"},
            {"name": "d", "compressionCodec": "PASS_THROUGH"}
        ])))
        .unwrap();
        let got: Vec<Option<Codec>> = fields.iter().map(|f| f.compression).collect();
        assert_eq!(
            got,
            vec![
                Some(Codec::Zstandard),
                Some(Codec::Lz4),
                None,
                Some(Codec::PassThrough)
            ]
        );
        let e = parse_field_configs(Some(&serde_json::json!([
            {"name": "a", "compressionCodec": "BROTLI"}
        ])))
        .unwrap_err()
        .to_string();
        assert!(e.contains("$.fieldConfigList[0].compressionCodec"), "{e}");
        assert!(e.contains("BROTLI"), "{e}");
    }

    #[test]
    fn test_bad_field_configs_name_their_path() {
        let e = parse_field_configs(Some(
            &serde_json::json!([{"name": "a"}, {"encodingType": "RAW"}]),
        ))
        .unwrap_err();
        assert_eq!(e.path, "$.fieldConfigList[1].name");
        let e = parse_field_configs(Some(
            &serde_json::json!([{"name": "a", "encodingType": "ZIP"}]),
        ))
        .unwrap_err();
        assert_eq!(e.path, "$.fieldConfigList[0].encodingType");
    }
}
