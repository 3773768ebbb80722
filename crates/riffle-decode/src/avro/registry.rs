//! A Confluent schema-registry client and the Confluent-framed Avro decoder
//! (`KafkaConfluentSchemaRegistryAvroMessageDecoder`); the Protobuf one
//! ([`crate::proto::ConfluentProtoDecoder`]) shares the client.
//!
//! Protobuf schemas are fetched in the registry's serialized form
//! (`GET <url>/schemas/ids/<id>?format=serialized`: a base64 `FileDescriptorProto`), with the
//! files they reference (`GET <url>/subjects/<s>/versions/<v>?format=serialized`), so no
//! `.proto` text is parsed here.
//!
//! Framing: byte 0 is `0`, bytes 1..5 the writer schema's id (big-endian), then the Avro
//! datum. Schemas are fetched by id (`GET <url>/schemas/ids/<id>`) before a batch is
//! decoded ([`SchemaSource::prefetch`], on the partition's async loop, never on the
//! decoding threads) and kept (`cached.schema.map.capacity`, default 1000). A registry that
//! cannot be reached, answers 5xx or refuses the credentials is an outage: the batch is not
//! decoded and is fetched again after a backoff, so no message is lost or skipped; an id
//! the registry does not know (404) makes its messages malformed.
//!
//! Decoder props (`stream.<t>.decoder.prop.<name>`):
//! - `schema.registry.rest.url` (required; several comma-separated URLs are tried in turn);
//! - basic auth: `basic.auth.user.info` or `schema.registry.basic.auth.user.info`
//!   (`user:password`), with `basic.auth.credentials.source` `USER_INFO` (the default) or
//!   `URL` (credentials in the URL's user-info);
//! - TLS: `schema.registry.ssl.truststore.location` with
//!   `schema.registry.ssl.truststore.type` `PEM` (a PEM file of CA certificates; Java key
//!   stores cannot be read: convert them with `keytool -exportcert -rfc`);
//! - `cached.schema.map.capacity`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;

use parking_lot::Mutex;
use riffle_config::StreamConfig;
use riffle_segment::{BlockBuilder, TableColumns};
use riffle_stream::StreamMessage;

use super::{AvroSchema, BoundSchema};
use crate::json::field_map;
use crate::{DecodeError, DecodeTarget, MessageDecoder, SchemaSource};

/// Pinot's Confluent Avro decoder class.
pub use riffle_config::stream::CONFLUENT_AVRO_DECODER;

/// What the registry answered for an id: the schema text, or why there is none.
type Answer = Result<Arc<[u8]>, String>;

/// What kind of schemas a registry client reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaKind {
    /// Avro schema text.
    Avro,
    /// Protobuf file descriptors (`format=serialized`).
    Protobuf,
}

/// A schema registry's client with its cache of schemas by id.
pub struct Registry {
    urls: Vec<String>,
    client: reqwest::Client,
    auth: Option<(String, String)>,
    capacity: usize,
    kind: SchemaKind,
    schemas: Mutex<HashMap<u32, Answer>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("urls", &self.urls)
            .finish()
    }
}

fn prop<'a>(config: &'a StreamConfig, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|k| config.decoder_props.get(*k))
        .map(String::as_str)
        .filter(|v| !v.trim().is_empty())
}

impl Registry {
    /// From a stream's decoder props.
    pub fn from_config(config: &StreamConfig, kind: SchemaKind) -> Result<Registry, DecodeError> {
        let urls_text = prop(config, &["schema.registry.rest.url"]).ok_or_else(|| {
            DecodeError::new(
                "decoder.prop.schema.registry.rest.url is required: the schema registry's URL",
            )
        })?;
        let mut urls = Vec::new();
        let mut url_auth = None;
        for u in urls_text
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            let mut parsed = reqwest::Url::parse(u).map_err(|e| {
                DecodeError::new(format!("decoder.prop.schema.registry.rest.url '{u}': {e}"))
            })?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(DecodeError::new(format!(
                    "decoder.prop.schema.registry.rest.url '{u}': expected http or https"
                )));
            }
            if !parsed.username().is_empty() {
                url_auth = Some((
                    parsed.username().to_string(),
                    parsed.password().unwrap_or_default().to_string(),
                ));
                let _ = parsed.set_username("");
                let _ = parsed.set_password(None);
            }
            urls.push(parsed.as_str().trim_end_matches('/').to_string());
        }
        let source = prop(
            config,
            &[
                "basic.auth.credentials.source",
                "schema.registry.basic.auth.credentials.source",
            ],
        )
        .unwrap_or("USER_INFO")
        .to_ascii_uppercase();
        let auth = match source.as_str() {
            "URL" => url_auth,
            "USER_INFO" => match prop(
                config,
                &[
                    "basic.auth.user.info",
                    "schema.registry.basic.auth.user.info",
                ],
            ) {
                Some(info) => {
                    let (u, p) = info.split_once(':').ok_or_else(|| {
                        DecodeError::new(
                            "decoder.prop.basic.auth.user.info: expected user:password",
                        )
                    })?;
                    Some((u.to_string(), p.to_string()))
                }
                None => url_auth,
            },
            other => {
                return Err(DecodeError::new(format!(
                "decoder.prop.basic.auth.credentials.source '{other}': expected USER_INFO or URL"
            )))
            }
        };
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5));
        if let Some(path) = prop(config, &["schema.registry.ssl.truststore.location"]) {
            let kind = prop(config, &["schema.registry.ssl.truststore.type"]).unwrap_or("PEM");
            if !kind.eq_ignore_ascii_case("PEM") {
                return Err(DecodeError::new(format!(
                    "decoder.prop.schema.registry.ssl.truststore.type '{kind}': only PEM files are read \
                     (export a Java key store's certificates with keytool -exportcert -rfc)"
                )));
            }
            let pem = std::fs::read(path).map_err(|e| {
                DecodeError::new(format!(
                    "decoder.prop.schema.registry.ssl.truststore.location '{path}': {e}"
                ))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                DecodeError::new(format!(
                    "decoder.prop.schema.registry.ssl.truststore.location '{path}': not PEM certificates: {e}"
                ))
            })?;
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let client = builder
            .build()
            .map_err(|e| DecodeError::new(format!("schema registry client: {e}")))?;
        let capacity = match prop(config, &["cached.schema.map.capacity"]) {
            None => 1000,
            Some(c) => c
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|c| *c > 0)
                .ok_or_else(|| {
                    DecodeError::new(format!(
                    "decoder.prop.cached.schema.map.capacity must be a positive number, got '{c}'"
                ))
                })?,
        };
        Ok(Registry {
            urls,
            client,
            auth,
            capacity,
            kind,
            schemas: Mutex::new(HashMap::new()),
        })
    }

    /// The cached answer for an id.
    pub fn cached(&self, id: u32) -> Option<Answer> {
        self.schemas.lock().get(&id).cloned()
    }

    /// GETs `path` from the first registry URL that answers. `Err` is an outage (retry
    /// later); `Ok(Err)` a 404, a permanent answer.
    async fn get_json(&self, path: &str) -> Result<Result<serde_json::Value, String>, DecodeError> {
        let mut last = String::new();
        for url in &self.urls {
            let mut req = self.client.get(format!("{url}{path}"));
            if let Some((u, p)) = &self.auth {
                req = req.basic_auth(u, Some(p));
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    last = format!("schema registry {url} cannot be reached: {e}");
                    continue;
                }
            };
            let status = resp.status();
            if status == reqwest::StatusCode::NOT_FOUND {
                return Ok(Err(format!("the schema registry has no {path}")));
            }
            if !status.is_success() {
                last = format!("schema registry {url} answered {status} for {path}");
                continue;
            }
            match resp.json().await {
                Ok(b) => return Ok(Ok(b)),
                Err(e) => {
                    last = format!("schema registry {url}: unreadable answer for {path}: {e}")
                }
            }
        }
        Err(DecodeError::new(last).retryable())
    }

    /// Fetches one id. `Err` is an outage (retry later); `Ok(Err)` a permanent answer.
    async fn fetch(&self, id: u32) -> Result<Answer, DecodeError> {
        match self.kind {
            SchemaKind::Avro => {
                let body = match self.get_json(&format!("/schemas/ids/{id}")).await? {
                    Ok(b) => b,
                    Err(_) => {
                        return Ok(Err(format!("schema id {id} is not in the schema registry")))
                    }
                };
                let kind = body
                    .get("schemaType")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("AVRO");
                Ok(
                    match body.get("schema").and_then(serde_json::Value::as_str) {
                        Some(s) if kind.eq_ignore_ascii_case("AVRO") => Ok(Arc::from(s.as_bytes())),
                        Some(_) => Err(format!("schema id {id} is a {kind} schema, not Avro")),
                        None => Err(format!(
                            "schema id {id}: the registry's answer has no schema"
                        )),
                    },
                )
            }
            SchemaKind::Protobuf => self.fetch_protobuf(id).await,
        }
    }

    /// A Protobuf schema and the files it imports, in the registry's serialized form
    /// (base64 `FileDescriptorProto`s), as one `FileDescriptorSet` with the schema's own
    /// file first.
    async fn fetch_protobuf(&self, id: u32) -> Result<Answer, DecodeError> {
        let body = match self
            .get_json(&format!("/schemas/ids/{id}?format=serialized"))
            .await?
        {
            Ok(b) => b,
            Err(_) => return Ok(Err(format!("schema id {id} is not in the schema registry"))),
        };
        let mut set = Vec::new();
        let mut pending = vec![(format!("schema id {id}"), body)];
        let mut seen: Vec<String> = Vec::new();
        while let Some((what, body)) = pending.pop() {
            let kind = body
                .get("schemaType")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("AVRO");
            if !kind.eq_ignore_ascii_case("PROTOBUF") {
                return Ok(Err(format!("{what} is a {kind} schema, not Protobuf")));
            }
            let Some(text) = body.get("schema").and_then(serde_json::Value::as_str) else {
                return Ok(Err(format!("{what}: the registry's answer has no schema")));
            };
            let Ok(file) = base64::engine::general_purpose::STANDARD.decode(text.trim()) else {
                return Ok(Err(format!(
                    "{what}: the registry answered .proto text, not the serialized descriptor \
                     (format=serialized) that is read here"
                )));
            };
            put_len_field(&mut set, 1, &file);
            let refs = body
                .get("references")
                .and_then(serde_json::Value::as_array)
                .cloned()
                .unwrap_or_default();
            for r in refs {
                let (Some(subject), Some(version)) = (
                    r.get("subject").and_then(serde_json::Value::as_str),
                    r.get("version").and_then(serde_json::Value::as_i64),
                ) else {
                    return Ok(Err(format!(
                        "{what}: a reference without subject and version"
                    )));
                };
                let key = format!("{subject}/{version}");
                if seen.contains(&key) {
                    continue;
                }
                if seen.len() >= 256 {
                    return Ok(Err(format!("{what}: more than 256 referenced schemas")));
                }
                seen.push(key);
                let subject_path: String = url_path_segment(subject);
                let path = format!("/subjects/{subject_path}/versions/{version}?format=serialized");
                match self.get_json(&path).await? {
                    Ok(b) => pending.push((format!("reference {subject} version {version}"), b)),
                    Err(e) => return Ok(Err(format!("{what}: {e}"))),
                }
            }
        }
        Ok(Ok(Arc::from(set.into_boxed_slice())))
    }
}

/// Appends a length-delimited protobuf field.
fn put_len_field(out: &mut Vec<u8>, number: u32, data: &[u8]) {
    let mut put = |mut v: u64| {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    };
    put(u64::from(number) << 3 | 2);
    put(data.len() as u64);
    out.extend_from_slice(data);
}

/// A subject name made safe for a URL path.
fn url_path_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[async_trait::async_trait]
impl SchemaSource for Registry {
    async fn prefetch(&self, messages: &[StreamMessage]) -> Result<(), DecodeError> {
        let mut wanted: Vec<u32> = Vec::new();
        {
            let cache = self.schemas.lock();
            for m in messages {
                if let Some(id) = schema_id(&m.value) {
                    if !cache.contains_key(&id) && !wanted.contains(&id) {
                        wanted.push(id);
                    }
                }
            }
        }
        for id in wanted {
            let answer = self.fetch(id).await?;
            let mut cache = self.schemas.lock();
            if cache.len() >= self.capacity {
                cache.clear();
            }
            cache.insert(id, answer);
        }
        Ok(())
    }
}

/// The schema id of a Confluent-framed message, or an error saying what the message holds
/// instead (shared by the Confluent Avro, JSON and Protobuf decoders).
pub fn framed_schema_id(v: &[u8]) -> Result<u32, DecodeError> {
    schema_id(v).ok_or_else(|| {
        DecodeError::new(format!(
            "not a Confluent-framed message: expected a zero magic byte and a 4-byte schema id, got {} bytes starting {}",
            v.len(),
            riffle_common::hex_encode(&v[..v.len().min(5)])
        ))
    })
}

/// The schema id of a Confluent-framed message, if it is one.
pub fn schema_id(value: &[u8]) -> Option<u32> {
    match value {
        [0, a, b, c, d, ..] => Some(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => None,
    }
}

/// `KafkaConfluentSchemaRegistryAvroMessageDecoder`.
pub struct ConfluentAvroDecoder {
    registry: Arc<Registry>,
    fields: HashMap<String, usize>,
    columns: usize,
    bound: HashMap<u32, Result<BoundSchema, String>>,
}

impl ConfluentAvroDecoder {
    /// From the stream's decoder props.
    pub fn new(
        config: &StreamConfig,
        columns: &Arc<TableColumns>,
        target: &DecodeTarget,
    ) -> Result<ConfluentAvroDecoder, DecodeError> {
        Ok(ConfluentAvroDecoder {
            registry: Arc::new(Registry::from_config(config, SchemaKind::Avro)?),
            fields: field_map(columns, &target.extras),
            columns: columns.columns.len(),
            bound: HashMap::new(),
        })
    }
}

impl MessageDecoder for ConfluentAvroDecoder {
    fn decode(&mut self, msg: &StreamMessage, out: &mut BlockBuilder) -> Result<(), DecodeError> {
        let v = &msg.value;
        let id = framed_schema_id(v)?;
        if !self.bound.contains_key(&id) {
            let answer = self.registry.cached(id).ok_or_else(|| {
                DecodeError::new(format!("schema id {id} was not fetched from the registry"))
                    .retryable()
            })?;
            let bound = answer.and_then(|bytes| {
                let text = std::str::from_utf8(&bytes)
                    .map_err(|_| format!("schema id {id}: the schema text is not UTF-8"))?;
                let schema = AvroSchema::parse(text).map_err(|e| format!("schema id {id}: {e}"))?;
                BoundSchema::bind(schema, &self.fields, self.columns)
                    .map_err(|e| format!("schema id {id}: {}", e.message))
            });
            if self.bound.len() >= 1000 {
                self.bound.clear();
            }
            self.bound.insert(id, bound);
        }
        match self.bound.get(&id) {
            Some(Ok(b)) => b.read(&v[5..], out),
            Some(Err(e)) => Err(DecodeError::new(e.clone())),
            None => Err(DecodeError::new(format!("schema id {id} unavailable"))),
        }
    }

    fn schema_source(&self) -> Option<Arc<dyn SchemaSource>> {
        Some(self.registry.clone())
    }
}
