//! Pinot's `complexTypeConfig`: a nested message reshaped into flat rows before its values
//! reach the columns.
//!
//! In Pinot's order:
//! 1. nested objects are flattened into `parent<delimiter>child` fields (delimiter `.` by
//!    default), at any depth;
//! 2. each field of `fieldsToUnnest` (parents before children) that holds an array gives one
//!    row per element, the other fields repeated; an object element is flattened under the
//!    field's name (`items.sku`), a scalar element takes the field's name; several fields
//!    give their cartesian product; an empty or absent array leaves one row without it;
//! 3. arrays not unnested: `NON_PRIMITIVE` (the default) turns an array holding objects or
//!    arrays into its JSON text and keeps an array of scalars as a multi-value field; `ALL`
//!    turns every array into JSON text; `NONE` keeps them all;
//! 4. `prefixesToRename` replaces a field name's prefix (`{"data.": ""}` strips it).

use serde_json::{Map, Value};

/// What `collectionNotUnnestedToJson` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CollectionToJson {
    /// Arrays holding objects or arrays become JSON text (Pinot's default).
    #[default]
    NonPrimitive,
    /// Every array becomes JSON text.
    All,
    /// Arrays are kept.
    None,
}

/// A table's `ingestionConfig.complexTypeConfig`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ComplexType {
    /// Array fields unnested into rows (flattened names).
    pub fields_to_unnest: Vec<String>,
    /// Between a parent's and a child's name.
    pub delimiter: String,
    /// What becomes of arrays that are not unnested.
    pub collection_to_json: CollectionToJson,
    /// Field-name prefixes replaced, in the order given.
    pub prefixes_to_rename: Vec<(String, String)>,
}

impl ComplexType {
    /// Reads a `complexTypeConfig` object; errors name the JSON path under `path`.
    pub fn parse(path: &str, v: &Value) -> Result<ComplexType, (String, String)> {
        let obj = v
            .as_object()
            .ok_or_else(|| (path.to_string(), "expected an object".to_string()))?;
        let mut out = ComplexType {
            delimiter: ".".into(),
            ..Default::default()
        };
        if let Some(f) = obj.get("fieldsToUnnest").filter(|f| !f.is_null()) {
            let p = format!("{path}.fieldsToUnnest");
            let arr = f
                .as_array()
                .ok_or_else(|| (p.clone(), "expected an array of field names".to_string()))?;
            for (i, x) in arr.iter().enumerate() {
                let name = x
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| (format!("{p}[{i}]"), "expected a field name".to_string()))?;
                out.fields_to_unnest.push(name.to_string());
            }
        }
        if let Some(d) = obj.get("delimiter").filter(|d| !d.is_null()) {
            out.delimiter = d
                .as_str()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    (
                        format!("{path}.delimiter"),
                        "expected a non-empty string".to_string(),
                    )
                })?
                .to_string();
        }
        if let Some(c) = obj
            .get("collectionNotUnnestedToJson")
            .filter(|c| !c.is_null())
        {
            out.collection_to_json = match c.as_str().map(str::to_ascii_uppercase).as_deref() {
                Some("NON_PRIMITIVE") => CollectionToJson::NonPrimitive,
                Some("ALL") => CollectionToJson::All,
                Some("NONE") => CollectionToJson::None,
                _ => {
                    return Err((
                        format!("{path}.collectionNotUnnestedToJson"),
                        format!("expected NON_PRIMITIVE, ALL or NONE, got {c}"),
                    ))
                }
            };
        }
        if let Some(r) = obj.get("prefixesToRename").filter(|r| !r.is_null()) {
            let p = format!("{path}.prefixesToRename");
            let m = r.as_object().ok_or_else(|| {
                (
                    p.clone(),
                    "expected an object of prefix: replacement".to_string(),
                )
            })?;
            for (k, v) in m {
                let to = v.as_str().ok_or_else(|| {
                    (
                        format!("{p}.{k}"),
                        "expected the replacement prefix as a string".to_string(),
                    )
                })?;
                out.prefixes_to_rename.push((k.clone(), to.to_string()));
            }
        }
        // Parents before children, so that a child path exists once its parent is unnested.
        out.fields_to_unnest.sort();
        Ok(out)
    }

    /// The rows of one message (a JSON object).
    pub fn rows(&self, message: Map<String, Value>) -> Result<Vec<Map<String, Value>>, String> {
        let mut flat = Map::new();
        self.flatten_into(&mut flat, None, message);
        let mut rows = vec![flat];
        for field in &self.fields_to_unnest {
            let mut next = Vec::with_capacity(rows.len());
            for mut row in rows {
                match row.remove(field) {
                    Some(Value::Array(items)) if !items.is_empty() => {
                        for item in items {
                            let mut r = row.clone();
                            match item {
                                Value::Object(o) => self.flatten_into(&mut r, Some(field), o),
                                other => {
                                    r.insert(field.clone(), other);
                                }
                            }
                            next.push(r);
                        }
                    }
                    Some(Value::Array(_)) | None => next.push(row),
                    Some(other) => {
                        row.insert(field.clone(), other);
                        next.push(row);
                    }
                }
            }
            rows = next;
            if rows.len() > MAX_ROWS_PER_MESSAGE {
                return Err(format!(
                    "unnesting gives more than {MAX_ROWS_PER_MESSAGE} rows for one message"
                ));
            }
        }
        for row in &mut rows {
            if self.collection_to_json != CollectionToJson::None {
                for v in row.values_mut() {
                    if let Value::Array(items) = v {
                        let nested = items.iter().any(|x| x.is_object() || x.is_array());
                        if nested || self.collection_to_json == CollectionToJson::All {
                            *v = Value::String(v.to_string());
                        }
                    }
                }
            }
            if !self.prefixes_to_rename.is_empty() {
                let old = std::mem::take(row);
                for (k, v) in old {
                    let name = self.renamed(k);
                    if row.contains_key(&name) {
                        return Err(format!("renaming prefixes gives the field '{name}' twice"));
                    }
                    row.insert(name, v);
                }
            }
        }
        Ok(rows)
    }

    fn renamed(&self, k: String) -> String {
        for (from, to) in &self.prefixes_to_rename {
            if let Some(rest) = k.strip_prefix(from.as_str()) {
                return format!("{to}{rest}");
            }
        }
        k
    }

    fn flatten_into(
        &self,
        out: &mut Map<String, Value>,
        prefix: Option<&str>,
        m: Map<String, Value>,
    ) {
        for (k, v) in m {
            let name = match prefix {
                Some(p) => format!("{p}{}{k}", self.delimiter),
                None => k,
            };
            match v {
                Value::Object(o) => self.flatten_into(out, Some(&name), o),
                other => {
                    out.insert(name, other);
                }
            }
        }
    }
}

/// Rows one message may unnest into (a guard against a cartesian explosion).
pub const MAX_ROWS_PER_MESSAGE: usize = 100_000;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows(cfg: Value, msg: Value) -> Vec<Value> {
        let c = ComplexType::parse("$.c", &cfg).unwrap();
        let Value::Object(m) = msg else { panic!() };
        c.rows(m).unwrap().into_iter().map(Value::Object).collect()
    }

    #[test]
    fn flattens_nested_objects() {
        assert_eq!(
            rows(
                json!({}),
                json!({"id": 1, "user": {"name": "a", "geo": {"cc": "FR"}}})
            ),
            [json!({"id": 1, "user.name": "a", "user.geo.cc": "FR"})]
        );
        assert_eq!(
            rows(json!({"delimiter": "_"}), json!({"user": {"name": "a"}})),
            [json!({"user_name": "a"})]
        );
    }

    #[test]
    fn unnests_arrays_into_rows() {
        let msg = json!({"order": 7, "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}], "tags": ["x", "y"]});
        assert_eq!(
            rows(json!({"fieldsToUnnest": ["items"]}), msg.clone()),
            [
                json!({"order": 7, "tags": ["x", "y"], "items.sku": "a", "items.qty": 1}),
                json!({"order": 7, "tags": ["x", "y"], "items.sku": "b", "items.qty": 2}),
            ]
        );
        // Two fields: the cartesian product.
        let r = rows(json!({"fieldsToUnnest": ["items", "tags"]}), msg);
        assert_eq!(r.len(), 4);
        assert_eq!(
            r[1],
            json!({"order": 7, "items.sku": "a", "items.qty": 1, "tags": "y"})
        );
        // An empty array: one row without it.
        assert_eq!(
            rows(
                json!({"fieldsToUnnest": ["items"]}),
                json!({"order": 1, "items": []})
            ),
            [json!({"order": 1})]
        );
        // A nested path, parent first.
        assert_eq!(
            rows(
                json!({"fieldsToUnnest": ["a.list", "a"]}),
                json!({"a": [{"list": [1, 2]}]})
            ),
            [json!({"a.list": 1}), json!({"a.list": 2})]
        );
    }

    #[test]
    fn collections_not_unnested() {
        let msg = json!({"nums": [1, 2], "objs": [{"k": 1}]});
        assert_eq!(
            rows(json!({}), msg.clone()),
            [json!({"nums": [1, 2], "objs": "[{\"k\":1}]"})]
        );
        assert_eq!(
            rows(json!({"collectionNotUnnestedToJson": "ALL"}), msg.clone()),
            [json!({"nums": "[1,2]", "objs": "[{\"k\":1}]"})]
        );
        assert_eq!(
            rows(json!({"collectionNotUnnestedToJson": "NONE"}), msg.clone()),
            [msg]
        );
    }

    #[test]
    fn renames_prefixes() {
        assert_eq!(
            rows(
                json!({"prefixesToRename": {"data.": "", "meta.": "m_"}}),
                json!({"data": {"a": 1}, "meta": {"b": 2}, "c": 3})
            ),
            [json!({"a": 1, "m_b": 2, "c": 3})]
        );
        let c = ComplexType::parse("$.c", &json!({"prefixesToRename": {"data.": ""}})).unwrap();
        let Value::Object(m) = json!({"data": {"a": 1}, "a": 2}) else {
            panic!()
        };
        assert!(c.rows(m).unwrap_err().contains("'a' twice"));
    }

    #[test]
    fn bad_configs_name_the_path() {
        for (cfg, path) in [
            (json!({"fieldsToUnnest": "x"}), "$.c.fieldsToUnnest"),
            (json!({"fieldsToUnnest": [1]}), "$.c.fieldsToUnnest[0]"),
            (json!({"delimiter": ""}), "$.c.delimiter"),
            (
                json!({"collectionNotUnnestedToJson": "SOME"}),
                "$.c.collectionNotUnnestedToJson",
            ),
            (
                json!({"prefixesToRename": {"a.": 1}}),
                "$.c.prefixesToRename.a.",
            ),
        ] {
            assert_eq!(ComplexType::parse("$.c", &cfg).unwrap_err().0, path);
        }
    }
}
