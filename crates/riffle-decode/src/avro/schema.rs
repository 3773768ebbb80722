//! Avro schemas (the JSON form of the Avro specification), parsed into an arena of nodes so
//! that named and recursive types are indices.

use std::collections::HashMap;

use serde_json::Value;

/// An index into [`AvroSchema::nodes`].
pub type NodeId = usize;

/// A logical type annotation Riffle converts (others read as their underlying type).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logical {
    /// `decimal` on bytes or fixed: the unscaled two's-complement integer and its scale.
    Decimal { scale: u32 },
    /// `date`: days since the epoch (int).
    Date,
    /// `time-millis` (int).
    TimeMillis,
    /// `time-micros` (long).
    TimeMicros,
    /// `timestamp-millis` / `local-timestamp-millis` (long).
    TimestampMillis,
    /// `timestamp-micros` / `local-timestamp-micros` (long).
    TimestampMicros,
    /// `timestamp-nanos` / `local-timestamp-nanos` (long).
    TimestampNanos,
    /// `uuid` on string (or 16-byte fixed).
    Uuid,
}

/// One schema node.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// `null`.
    Null,
    /// `boolean`.
    Boolean,
    /// `int` (zig-zag varint).
    Int(Option<Logical>),
    /// `long` (zig-zag varint).
    Long(Option<Logical>),
    /// `float` (4 bytes, little-endian).
    Float,
    /// `double` (8 bytes, little-endian).
    Double,
    /// `bytes` (length-prefixed).
    Bytes(Option<Logical>),
    /// `string` (length-prefixed UTF-8).
    String(Option<Logical>),
    /// A record and its fields in order.
    Record {
        /// Full name.
        name: String,
        /// `(field name, node)`.
        fields: Vec<(String, NodeId)>,
    },
    /// An enum's symbols.
    Enum(Vec<String>),
    /// An array of items.
    Array(NodeId),
    /// A map to values (string keys).
    Map(NodeId),
    /// A union's branches.
    Union(Vec<NodeId>),
    /// `fixed` of a size.
    Fixed(usize, Option<Logical>),
}

/// A parsed schema; the root is node 0.
#[derive(Clone, Debug, PartialEq)]
pub struct AvroSchema {
    /// The nodes; node 0 is the root.
    pub nodes: Vec<Node>,
}

/// Deepest nesting accepted (a guard against hostile schemas).
const MAX_DEPTH: usize = 64;

impl AvroSchema {
    /// Parses a schema from its JSON text; errors name what is wrong.
    pub fn parse(text: &str) -> Result<AvroSchema, String> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| format!("the Avro schema is not JSON: {e}"))?;
        let mut p = Parser {
            nodes: Vec::new(),
            named: HashMap::new(),
        };
        p.node(&v, None, 0)?;
        Ok(AvroSchema { nodes: p.nodes })
    }

    /// The root node.
    pub fn root(&self) -> &Node {
        &self.nodes[0]
    }
}

struct Parser {
    nodes: Vec<Node>,
    named: HashMap<String, NodeId>,
}

fn full_name(name: &str, ns: Option<&str>) -> String {
    if name.contains('.') {
        return name.to_string();
    }
    match ns {
        Some(ns) if !ns.is_empty() => format!("{ns}.{name}"),
        _ => name.to_string(),
    }
}

fn logical(v: &Value) -> Option<Logical> {
    let lt = v.get("logicalType")?.as_str()?;
    Some(match lt {
        "decimal" => Logical::Decimal {
            scale: v.get("scale").and_then(Value::as_u64).unwrap_or(0).min(76) as u32,
        },
        "date" => Logical::Date,
        "time-millis" => Logical::TimeMillis,
        "time-micros" => Logical::TimeMicros,
        "timestamp-millis" | "local-timestamp-millis" => Logical::TimestampMillis,
        "timestamp-micros" | "local-timestamp-micros" => Logical::TimestampMicros,
        "timestamp-nanos" | "local-timestamp-nanos" => Logical::TimestampNanos,
        "uuid" => Logical::Uuid,
        _ => return None,
    })
}

impl Parser {
    fn push(&mut self, n: Node) -> NodeId {
        self.nodes.push(n);
        self.nodes.len() - 1
    }

    fn primitive(&mut self, name: &str, lt: Option<Logical>) -> Option<NodeId> {
        let n = match name {
            "null" => Node::Null,
            "boolean" => Node::Boolean,
            "int" => Node::Int(lt),
            "long" => Node::Long(lt),
            "float" => Node::Float,
            "double" => Node::Double,
            "bytes" => Node::Bytes(lt),
            "string" => Node::String(lt),
            _ => return None,
        };
        Some(self.push(n))
    }

    fn node(&mut self, v: &Value, ns: Option<&str>, depth: usize) -> Result<NodeId, String> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "the Avro schema nests deeper than {MAX_DEPTH} levels"
            ));
        }
        match v {
            Value::String(name) => {
                if let Some(id) = self.primitive(name, None) {
                    return Ok(id);
                }
                let full = full_name(name, ns);
                self.named
                    .get(&full)
                    .or_else(|| self.named.get(name))
                    .copied()
                    .ok_or_else(|| format!("unknown Avro type '{name}'"))
            }
            Value::Array(branches) => {
                let at = self.push(Node::Union(Vec::new()));
                let mut ids = Vec::with_capacity(branches.len());
                for b in branches {
                    ids.push(self.node(b, ns, depth + 1)?);
                }
                self.nodes[at] = Node::Union(ids);
                Ok(at)
            }
            Value::Object(o) => {
                let ty = o
                    .get("type")
                    .ok_or("an Avro schema object needs a \"type\"")?;
                let lt = logical(v);
                match ty {
                    Value::String(t) => match t.as_str() {
                        "record" | "error" => {
                            let name = o
                                .get("name")
                                .and_then(Value::as_str)
                                .ok_or("an Avro record needs a \"name\"")?;
                            let rns = o.get("namespace").and_then(Value::as_str).or(ns);
                            let full = full_name(name, rns);
                            let at = self.push(Node::Record {
                                name: full.clone(),
                                fields: Vec::new(),
                            });
                            self.named.insert(full.clone(), at);
                            let inner_ns = full.rsplit_once('.').map(|(n, _)| n.to_string());
                            let mut fields = Vec::new();
                            for f in o
                                .get("fields")
                                .and_then(Value::as_array)
                                .ok_or_else(|| format!("Avro record '{full}' needs \"fields\""))?
                            {
                                let fname =
                                    f.get("name").and_then(Value::as_str).ok_or_else(|| {
                                        format!("a field of '{full}' has no \"name\"")
                                    })?;
                                let ft = f.get("type").ok_or_else(|| {
                                    format!("field '{fname}' of '{full}' has no \"type\"")
                                })?;
                                let id = self.node(ft, inner_ns.as_deref(), depth + 1)?;
                                fields.push((fname.to_string(), id));
                            }
                            self.nodes[at] = Node::Record { name: full, fields };
                            Ok(at)
                        }
                        "enum" => {
                            let symbols = o
                                .get("symbols")
                                .and_then(Value::as_array)
                                .ok_or("an Avro enum needs \"symbols\"")?
                                .iter()
                                .map(|s| s.as_str().unwrap_or_default().to_string())
                                .collect();
                            let at = self.push(Node::Enum(symbols));
                            if let Some(name) = o.get("name").and_then(Value::as_str) {
                                let ens = o.get("namespace").and_then(Value::as_str).or(ns);
                                self.named.insert(full_name(name, ens), at);
                            }
                            Ok(at)
                        }
                        "fixed" => {
                            let size = o
                                .get("size")
                                .and_then(Value::as_u64)
                                .ok_or("an Avro fixed needs a \"size\"")?
                                as usize;
                            let at = self.push(Node::Fixed(size, lt));
                            if let Some(name) = o.get("name").and_then(Value::as_str) {
                                let fns = o.get("namespace").and_then(Value::as_str).or(ns);
                                self.named.insert(full_name(name, fns), at);
                            }
                            Ok(at)
                        }
                        "array" => {
                            let at = self.push(Node::Array(0));
                            let items = o.get("items").ok_or("an Avro array needs \"items\"")?;
                            let id = self.node(items, ns, depth + 1)?;
                            self.nodes[at] = Node::Array(id);
                            Ok(at)
                        }
                        "map" => {
                            let at = self.push(Node::Map(0));
                            let values = o.get("values").ok_or("an Avro map needs \"values\"")?;
                            let id = self.node(values, ns, depth + 1)?;
                            self.nodes[at] = Node::Map(id);
                            Ok(at)
                        }
                        prim => match self.primitive(prim, lt) {
                            Some(id) => Ok(id),
                            None => self.node(&Value::String(prim.to_string()), ns, depth + 1),
                        },
                    },
                    other => self.node(other, ns, depth + 1),
                }
            }
            other => Err(format!("not an Avro schema: {other}")),
        }
    }
}
