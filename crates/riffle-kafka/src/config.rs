//! The Kafka stream config: Pinot's `stream.kafka.*` keys and the Kafka client keys of the
//! same flat map, parsed into a typed [`KafkaConfig`] and turned into a librdkafka
//! [`ClientConfig`].
//!
//! Pinot copies the whole stream map into the Java consumer's properties and keeps the keys
//! Kafka's `ConsumerConfig` recognises. Riffle's client is librdkafka, so each key with a dot
//! outside Pinot's own namespaces (`stream.*`, `realtime.*`, ...) is sorted into one of:
//! - **passed through**: librdkafka consumer/global properties with the Java name
//!   (`security.protocol`, `sasl.mechanism`, `ssl.key.location`, `max.partition.fetch.bytes`,
//!   `fetch.min.bytes`, ...), see [`PASS_THROUGH`];
//! - **translated**: Java-only keys with a librdkafka equivalent (`sasl.jaas.config` with a
//!   PLAIN or SCRAM login module, a PEM `ssl.truststore.location`, a PKCS#12 or PEM
//!   `ssl.keystore.location`, `fetch.max.wait.ms`, `max.poll.records`, ...);
//! - **owned by Riffle** (`bootstrap.servers`, `group.id`, `enable.auto.commit`,
//!   `auto.offset.reset`, `client.id`, deserializers, ...): overridden;
//! - **not honoured**: reported as warnings by [`KafkaConfig::warnings`], never silently.
//!
//! Secrets (`sasl.password`, `ssl.key.password`, `sasl.jaas.config`, ...) are kept in
//! [`Secret`], whose `Debug` and `Display` print `<redacted>`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::KafkaError;
use riffle_stream::{StreamConfig, StreamError};

use crate::client_keys::{
    GROUP_KEYS, GROUP_TUNING, HONOURED, PINOT_LEGACY, PINOT_SSL, REFUSED, SERVER_KEYS,
};
pub use crate::client_keys::{OWNED, PASS_THROUGH};

/// The most partition ids `stream.kafka.partition.ids` may list (as Pinot).
pub const MAX_PARTITION_IDS: usize = 10_000;
/// The most messages one fetch returns unless `max.poll.records` says otherwise.
pub const DEFAULT_MAX_BATCH_MESSAGES: usize = 10_000;
/// The most key and value bytes one fetch returns (a batch stops after the message that
/// crosses it).
pub const DEFAULT_MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;

/// Text that must never be printed: `Debug` and `Display` show `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself, for the client only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A client property value; secrets are wrapped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientValue {
    /// An ordinary value.
    Plain(String),
    /// A password, key or JAAS config.
    Secret(Secret),
}

impl ClientValue {
    fn of(key: &str, value: &str) -> ClientValue {
        if is_secret_key(key) {
            ClientValue::Secret(Secret::new(value))
        } else {
            ClientValue::Plain(value.to_string())
        }
    }

    /// The value for the client.
    pub fn expose(&self) -> &str {
        match self {
            ClientValue::Plain(s) => s,
            ClientValue::Secret(s) => s.expose(),
        }
    }

    /// The value as it may be printed.
    pub fn shown(&self) -> String {
        match self {
            ClientValue::Plain(s) => format!("'{s}'"),
            ClientValue::Secret(_) => "<redacted>".to_string(),
        }
    }
}

pub use riffle_config::stream::is_secret_key;

/// Kafka's transaction isolation for reads (`stream.kafka.isolation.level`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IsolationLevel {
    /// Every record, including those of open and aborted transactions (Kafka's default).
    ReadUncommitted,
    /// Only committed records, up to the last stable offset.
    ReadCommitted,
}

impl IsolationLevel {
    fn parse(key: &str, v: &str) -> Result<IsolationLevel, StreamError> {
        match v.trim() {
            "read_committed" => Ok(IsolationLevel::ReadCommitted),
            "read_uncommitted" => Ok(IsolationLevel::ReadUncommitted),
            other => Err(StreamError::config(format!(
                "{key}: '{other}' is not an isolation level: expected read_committed or \
                 read_uncommitted"
            ))),
        }
    }

    /// librdkafka's name.
    pub fn as_str(self) -> &'static str {
        match self {
            IsolationLevel::ReadUncommitted => "read_uncommitted",
            IsolationLevel::ReadCommitted => "read_committed",
        }
    }
}

/// A parsed Kafka stream config.
#[derive(Clone, Debug)]
pub struct KafkaConfig {
    /// `stream.kafka.broker.list`, given to librdkafka as `bootstrap.servers`.
    pub bootstrap_servers: String,
    /// `stream.kafka.topic.name`.
    pub topic: String,
    /// `stream.kafka.isolation.level` (or the raw `isolation.level`); Kafka's default
    /// `read_uncommitted` when unset, as Pinot (librdkafka's own default differs).
    pub isolation_level: IsolationLevel,
    /// `stream.kafka.metadata.populate`.
    pub metadata_populate: bool,
    /// `stream.kafka.partition.ids`: the only partitions consumed, sorted and distinct;
    /// `None` = all.
    pub partition_ids: Option<Vec<u32>>,
    /// `stream.kafka.connection.timeout.millis`.
    pub connection_timeout: Duration,
    /// `stream.kafka.fetch.timeout.millis`.
    pub fetch_timeout: Duration,
    /// The most messages a fetch returns (`max.poll.records`, default 10,000).
    pub max_batch_messages: usize,
    /// The most key and value bytes a fetch returns (8 MiB).
    pub max_batch_bytes: usize,
    /// librdkafka properties from the map, translated; secrets wrapped.
    pub client: BTreeMap<String, ClientValue>,
    /// Consumer-group settings of a stream-level table (`session.timeout.ms`,
    /// `heartbeat.interval.ms`, `max.poll.interval.ms`, `partition.assignment.strategy`,
    /// `group.instance.id`), given to its group consumer.
    pub group_client: BTreeMap<String, String>,
    /// Keys accepted but not honoured, with the reason.
    pub warnings: Vec<String>,
}

/// Base64 key material of a Pinot key as PEM for librdkafka: the decoded bytes when they
/// are PEM already, else DER, which is the same base64 between PEM armour lines.
fn pem_of(key: &str, value: &str, label: &str) -> Result<String, StreamError> {
    use base64::Engine as _;
    let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .map_err(|e| err(format!("{key}: not base64 ({e})")))?;
    if bytes.starts_with(b"-----BEGIN") {
        return String::from_utf8(bytes)
            .map_err(|_| err(format!("{key}: the decoded PEM is not text")));
    }
    // DER starts with an ASN.1 SEQUENCE.
    if bytes.first() != Some(&0x30) {
        return Err(err(format!(
            "{key}: the decoded bytes are neither PEM nor DER {label} material"
        )));
    }
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in compact.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    Ok(pem)
}

fn err(msg: impl Into<String>) -> StreamError {
    StreamError::config(msg)
}

impl KafkaConfig {
    /// Parses the Kafka keys of a stream config. Errors name the key.
    pub fn parse(config: &StreamConfig) -> Result<KafkaConfig, StreamError> {
        let raw = &config.raw;
        let written = raw
            .get("streamType")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| config.stream_type.clone());
        let pfx = format!("stream.{written}.");
        let key_name = |suffix: &str| -> String {
            let k = format!("{pfx}{suffix}");
            if raw.contains_key(&k) {
                k
            } else {
                format!("stream.{}.{suffix}", config.stream_type)
            }
        };
        let mut warnings = Vec::new();

        let broker_key = key_name("broker.list");
        // A stream-level (high-level consumer) config of Pinot's names its brokers with
        // `stream.kafka.hlc.bootstrap.server`.
        let bootstrap_servers = match config
            .plugin_key("broker.list")
            .or_else(|| config.plugin_key("hlc.bootstrap.server"))
            .map(str::trim)
        {
            Some(v) if !v.is_empty() => v.to_string(),
            _ => {
                return Err(err(format!(
                    "{broker_key} is required: expected the Kafka bootstrap servers, e.g. \
                     \"broker1:9092,broker2:9092\"{}",
                    if raw.contains_key("bootstrap.servers") {
                        " (bootstrap.servers is not read: Pinot and Riffle take the brokers \
                         from stream.kafka.broker.list)"
                    } else {
                        ""
                    }
                )))
            }
        };
        for server in bootstrap_servers.split(',') {
            let s = server.trim();
            let ok = match s.rsplit_once(':') {
                Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok(),
                None => !s.is_empty(),
            };
            if !ok {
                return Err(err(format!(
                    "{broker_key}: '{s}' is not a broker address: expected host:port, e.g. \
                     localhost:9092"
                )));
            }
        }

        let isolation_key = key_name("isolation.level");
        let isolation_level = match (
            config.plugin_key("isolation.level"),
            raw.get("isolation.level"),
        ) {
            (Some(v), _) => IsolationLevel::parse(&isolation_key, v)?,
            (None, Some(v)) => IsolationLevel::parse("isolation.level", v)?,
            (None, None) => IsolationLevel::ReadUncommitted,
        };

        let partition_ids = match config.plugin_key("partition.ids") {
            None => None,
            Some(v) if v.trim().is_empty() => None,
            Some(v) => Some(parse_partition_ids(&key_name("partition.ids"), v)?),
        };

        // Unparsable timeouts fall back to the default, as in Pinot: reported, not fatal.
        for suffix in ["connection.timeout.millis", "fetch.timeout.millis"] {
            if let Some(v) = config.plugin_key(suffix) {
                if v.trim().parse::<u32>().is_err() {
                    warnings.push(format!(
                        "{}: '{}' is not a number of milliseconds; the default is used",
                        key_name(suffix),
                        v.trim()
                    ));
                }
            }
        }
        let connection_timeout = Duration::from_millis(config.connection_timeout_ms);
        let fetch_timeout = Duration::from_millis(config.fetch_timeout_ms);

        let mut out = KafkaConfig {
            bootstrap_servers,
            topic: config.topic.clone(),
            isolation_level,
            metadata_populate: config.metadata_populate,
            partition_ids,
            connection_timeout,
            fetch_timeout,
            max_batch_messages: DEFAULT_MAX_BATCH_MESSAGES,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            client: BTreeMap::new(),
            group_client: BTreeMap::new(),
            warnings: Vec::new(),
        };

        // The plugin's own namespace: unknown keys are reported.
        for k in raw.keys() {
            let Some(suffix) = k
                .strip_prefix(&pfx)
                .or_else(|| k.strip_prefix(&format!("stream.{}.", config.stream_type)))
            else {
                continue;
            };
            if HONOURED.contains(&suffix) || suffix.starts_with("decoder.prop.") {
                continue;
            }
            if PINOT_LEGACY.contains(&suffix) {
                warnings.push(format!(
                    "{k} is a setting of Pinot's legacy Kafka consumer; it is ignored (as by \
                     Pinot's kafka30 consumer)"
                ));
            } else if let Some(p) = suffix.strip_prefix("consumer.prop.") {
                warnings.push(format!(
                    "{k} is not passed to the Kafka client (Pinot does not strip the \
                     consumer.prop. prefix either): write the Kafka key itself, '{p}'"
                ));
            } else if PINOT_SSL.contains(&suffix) {
                // Translated after the client keys (below).
            } else {
                warnings.push(format!("{k} is not a Kafka stream setting; it is ignored"));
            }
        }

        out.translate_client_keys(raw, config.stream_level, &mut warnings)?;
        out.translate_pinot_ssl(config)?;
        out.warnings = warnings;
        Ok(out)
    }

    /// Sorts the client keys of the map (see the module documentation).
    fn translate_client_keys(
        &mut self,
        raw: &BTreeMap<String, String>,
        stream_level: bool,
        warnings: &mut Vec<String>,
    ) -> Result<(), StreamError> {
        let is_client_key = |k: &str| {
            k.contains('.')
                && !k.starts_with("stream.")
                && !k.starts_with("realtime.")
                && !SERVER_KEYS.contains(&k)
        };
        let mut client = BTreeMap::new();
        let mut jaas: Option<&str> = None;
        for (k, v) in raw {
            let key = k.as_str();
            let candidate = is_client_key(key)
                || PASS_THROUGH.contains(&key)
                || REFUSED.contains(&key)
                || key.ends_with("_cb");
            if !candidate {
                continue;
            }
            if v.contains("${") && !key.starts_with("config.providers") {
                warnings.push(format!(
                    "{key}: the value looks like a Java config-provider reference (${{...}}), \
                     which Riffle does not resolve; it is used as written"
                ));
            }
            match key {
                _ if PASS_THROUGH.contains(&key) => {
                    client.insert(key.to_string(), ClientValue::of(key, v));
                }
                "isolation.level" => {} // read above
                "sasl.jaas.config" => jaas = Some(v.as_str()),
                "fetch.max.wait.ms" => {
                    client.insert("fetch.wait.max.ms".into(), ClientValue::of(key, v));
                }
                "receive.buffer.bytes" => {
                    client.insert(
                        "socket.receive.buffer.bytes".into(),
                        ClientValue::of(key, v),
                    );
                }
                "send.buffer.bytes" => {
                    client.insert("socket.send.buffer.bytes".into(), ClientValue::of(key, v));
                }
                "request.timeout.ms" => {
                    client.insert("socket.timeout.ms".into(), ClientValue::of(key, v));
                }
                "ssl.endpoint.identification.algorithm" => {
                    let a = match v.trim() {
                        "" => "none",
                        other => other,
                    };
                    client.insert(key.to_string(), ClientValue::Plain(a.to_ascii_lowercase()));
                }
                "max.poll.records" => match v.trim().parse::<usize>() {
                    Ok(n) if n > 0 => self.max_batch_messages = n,
                    _ => {
                        return Err(err(format!(
                            "max.poll.records: '{}' is not a positive number of records",
                            v.trim()
                        )))
                    }
                },
                "ssl.truststore.location" => {
                    let kind = raw
                        .get("ssl.truststore.type")
                        .map(|s| s.trim().to_ascii_uppercase());
                    match store_kind(kind.as_deref(), v) {
                        StoreKind::Pem => {
                            client.insert("ssl.ca.location".into(), ClientValue::Plain(v.clone()));
                        }
                        other => warnings.push(format!(
                            "ssl.truststore.location '{v}' is a {} trust store, which librdkafka \
                             cannot read: the brokers' certificates are checked against the \
                             system CAs instead. Convert it to PEM (keytool -exportcert -rfc) \
                             and set ssl.ca.location",
                            other.name()
                        )),
                    }
                }
                "ssl.truststore.certificates" => {
                    client.insert("ssl.ca.pem".into(), ClientValue::Plain(v.clone()));
                }
                "ssl.keystore.location" => {
                    let kind = raw
                        .get("ssl.keystore.type")
                        .map(|s| s.trim().to_ascii_uppercase());
                    match store_kind(kind.as_deref(), v) {
                        StoreKind::Pkcs12 => {
                            client.insert(key.to_string(), ClientValue::Plain(v.clone()));
                        }
                        StoreKind::Pem => {
                            client.insert(
                                "ssl.certificate.location".into(),
                                ClientValue::Plain(v.clone()),
                            );
                            client.insert("ssl.key.location".into(), ClientValue::Plain(v.clone()));
                            client.remove("ssl.keystore.password");
                        }
                        StoreKind::Jks => warnings.push(format!(
                            "ssl.keystore.location '{v}' is a JKS key store, which librdkafka \
                             cannot read: no client certificate is sent. Convert it to PKCS#12 \
                             (keytool -importkeystore -deststoretype PKCS12) or give PEM files \
                             with ssl.certificate.location and ssl.key.location"
                        )),
                    }
                }
                "ssl.keystore.certificate.chain" => {
                    client.insert("ssl.certificate.pem".into(), ClientValue::Plain(v.clone()));
                }
                "ssl.keystore.key" => {
                    client.insert("ssl.key.pem".into(), ClientValue::of(key, v));
                }
                "ssl.keystore.type" | "ssl.truststore.type" | "ssl.truststore.password" => {}
                _ if OWNED.contains(&key) => {}
                _ if stream_level && GROUP_TUNING.contains(&key) => {
                    self.group_client.insert(key.to_string(), v.clone());
                }
                _ if GROUP_KEYS.contains(&key) => warnings.push(format!(
                    "{key} is a consumer-group setting and has no effect: Riffle assigns \
                     partitions itself and keeps offsets in its catalog, it commits nothing to \
                     Kafka"
                )),
                "auto.offset.reset" => warnings.push(
                    "auto.offset.reset is ignored: the start of a partition is \
                     stream.kafka.consumer.prop.auto.offset.reset, and an offset that is no \
                     longer in the topic stops the partition with a data-loss error instead of \
                     jumping"
                        .to_string(),
                ),
                _ if REFUSED.contains(&key) || key.ends_with("_cb") => warnings.push(format!(
                    "{key} is refused: a table config may not load code, run commands or set \
                     callbacks of the Kafka client"
                )),
                _ if key.starts_with("config.providers") => warnings.push(format!(
                    "{key}: Java config providers are not supported; give the values directly"
                )),
                _ if key.starts_with("ssl.")
                    || key.starts_with("sasl.")
                    || key.starts_with("security.") =>
                {
                    warnings.push(format!(
                        "{key} is a setting of the Java Kafka client with no librdkafka \
                         equivalent; it is ignored"
                    ))
                }
                _ => warnings.push(format!(
                    "{key} is not a Kafka consumer setting Riffle knows; it is ignored"
                )),
            }
        }
        if let Some(j) = jaas {
            self.translate_jaas(j, &mut client, warnings);
        }
        self.client = client;
        Ok(())
    }

    /// Pinot's inline TLS material (`stream.kafka.ssl.server.certificate`,
    /// `.client.certificate`, `.client.key`: base64 of PEM or DER, as Pinot's Kafka plugin
    /// takes them) as librdkafka's `ssl.ca.pem`, `ssl.certificate.pem` and `ssl.key.pem`
    /// (a PKCS#8 key). As in Pinot, they make `security.protocol` default to `SSL`.
    fn translate_pinot_ssl(&mut self, config: &StreamConfig) -> Result<(), StreamError> {
        let key_name = |suffix: &str| format!("stream.{}.{suffix}", config.stream_type);
        if let Some(t) = config.plugin_key("ssl.certificate.type") {
            if !t.trim().eq_ignore_ascii_case("X.509") {
                return Err(err(format!(
                    "{}: '{}' is not supported: certificates are X.509",
                    key_name("ssl.certificate.type"),
                    t.trim()
                )));
            }
        }
        let mut any = false;
        for (suffix, target, label) in [
            ("ssl.server.certificate", "ssl.ca.pem", "CERTIFICATE"),
            (
                "ssl.client.certificate",
                "ssl.certificate.pem",
                "CERTIFICATE",
            ),
            ("ssl.client.key", "ssl.key.pem", "PRIVATE KEY"),
        ] {
            if let Some(v) = config.plugin_key(suffix) {
                let pem = pem_of(&key_name(suffix), v, label)?;
                let value = if suffix == "ssl.client.key" {
                    ClientValue::Secret(Secret::new(&pem))
                } else {
                    ClientValue::Plain(pem)
                };
                self.client.insert(target.to_string(), value);
                any = true;
            }
        }
        if any && !self.client.contains_key("security.protocol") {
            self.client
                .insert("security.protocol".into(), ClientValue::Plain("SSL".into()));
        }
        Ok(())
    }

    fn translate_jaas(
        &self,
        jaas: &str,
        client: &mut BTreeMap<String, ClientValue>,
        warnings: &mut Vec<String>,
    ) {
        let parsed = match parse_jaas(jaas) {
            Ok(p) => p,
            Err(e) => {
                warnings.push(format!(
                    "sasl.jaas.config cannot be read ({e}); it is ignored: give sasl.username \
                     and sasl.password"
                ));
                return;
            }
        };
        let module = parsed.module.as_str();
        let plain = module.ends_with("security.plain.PlainLoginModule");
        let scram = module.ends_with("security.scram.ScramLoginModule");
        if !(plain || scram) {
            let hint = if module.ends_with("OAuthBearerLoginModule") {
                "use librdkafka's sasl.oauthbearer.* keys"
            } else if module.contains("Krb5LoginModule") {
                "Kerberos (GSSAPI) is not built into this Riffle"
            } else {
                "only PlainLoginModule and ScramLoginModule are translated"
            };
            warnings.push(format!(
                "sasl.jaas.config uses login module {module}, which cannot be translated for \
                 librdkafka; it is ignored: {hint}"
            ));
            return;
        }
        for (opt, target) in [("username", "sasl.username"), ("password", "sasl.password")] {
            let Some(value) = parsed.options.get(opt) else {
                warnings.push(format!(
                    "sasl.jaas.config has no {opt}=\"...\" option; {target} is not set from it"
                ));
                continue;
            };
            match client.get(target) {
                Some(existing) if existing.expose() != value.expose() => warnings.push(format!(
                    "{target} and the {opt} of sasl.jaas.config differ; {target} is used"
                )),
                Some(_) => {}
                None => {
                    client.insert(target.to_string(), value.clone());
                }
            }
        }
        if plain
            && !client.contains_key("sasl.mechanism")
            && !client.contains_key("sasl.mechanisms")
        {
            client.insert("sasl.mechanism".into(), ClientValue::Plain("PLAIN".into()));
        }
    }

    /// The warnings about keys accepted but not honoured.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The librdkafka config of a consumer (partition consumer or metadata client).
    /// `client_id` names it in broker logs.
    pub fn client_config(&self, client_id: &str) -> ClientConfig {
        let mut c = ClientConfig::new();
        // Defaults Riffle chooses, which the map may override: a per-partition consumer
        // should not prefetch 64 MB as librdkafka's default does.
        c.set("queued.max.messages.kbytes", "16384");
        c.set("queued.min.messages", "20000");
        // With queues that small, librdkafka's default wait before fetching again once a
        // queue is full (1 s) stalls the partition after every batch: 40,000 rows/s
        // instead of over a million. A full queue is checked again after 10 ms.
        c.set("fetch.queue.backoff.ms", "10");
        // As Kafka's Java client (Pinot's consumer): retry a lost broker at least every
        // second, where librdkafka's default backs off to 10 s, so that a partition resumes
        // soon after the broker is back.
        c.set("reconnect.backoff.max.ms", "1000");
        c.set(
            "socket.connection.setup.timeout.ms",
            self.connection_timeout
                .as_millis()
                .clamp(1000, 2_147_483_647)
                .to_string(),
        );
        for (k, v) in &self.client {
            c.set(k.as_str(), v.expose());
        }
        // Owned by Riffle.
        c.set("bootstrap.servers", self.bootstrap_servers.as_str());
        c.set("client.id", client_id);
        c.set("group.id", format!("riffle-{}", uuid::Uuid::new_v4()));
        c.set("enable.auto.commit", "false");
        c.set("enable.auto.offset.store", "false");
        c.set("auto.offset.reset", "error");
        c.set("enable.partition.eof", "true");
        c.set("allow.auto.create.topics", "false");
        c.set("isolation.level", self.isolation_level.as_str());
        c.set_log_level(RDKafkaLogLevel::Warning);
        c
    }

    /// Checks every client property with librdkafka (names and values, without connecting).
    /// Secret values are not repeated in the error.
    pub fn check_client_config(&self) -> Result<(), StreamError> {
        let c = self.client_config("riffle-validate");
        match c.create_native_config() {
            Ok(_) => Ok(()),
            Err(KafkaError::ClientConfig(_, desc, key, _)) => {
                let shown = self
                    .client
                    .get(&key)
                    .map(ClientValue::shown)
                    .unwrap_or_default();
                Err(err(format!(
                    "Kafka client setting {key} {shown} is not valid: {desc}"
                )))
            }
            Err(e) => Err(err(format!("Kafka client settings are not valid: {e}"))),
        }
    }
}

/// The kind of a Java key or trust store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StoreKind {
    Jks,
    Pkcs12,
    Pem,
}

impl StoreKind {
    fn name(self) -> &'static str {
        match self {
            StoreKind::Jks => "JKS",
            StoreKind::Pkcs12 => "PKCS#12",
            StoreKind::Pem => "PEM",
        }
    }
}

/// A store's kind: the `ssl.*store.type` if given, else the file's content (PEM text) or
/// its extension; Java's default is JKS.
fn store_kind(declared: Option<&str>, path: &str) -> StoreKind {
    match declared {
        Some("PEM") => return StoreKind::Pem,
        Some("PKCS12") => return StoreKind::Pkcs12,
        Some("JKS") => return StoreKind::Jks,
        _ => {}
    }
    if let Ok(bytes) = std::fs::read(path) {
        let head = &bytes[..bytes.len().min(4096)];
        if head.windows(10).any(|w| w == b"-----BEGIN") {
            return StoreKind::Pem;
        }
        if head.starts_with(&[0xfe, 0xed, 0xfe, 0xed]) {
            return StoreKind::Jks;
        }
    }
    let ext = Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("pem" | "crt" | "cer") => StoreKind::Pem,
        Some("p12" | "pfx" | "pkcs12") => StoreKind::Pkcs12,
        _ => StoreKind::Jks,
    }
}

/// Parses `stream.kafka.partition.ids`: `0,2,5`, `0-399`, `0-99,200,300-399`. Returns the ids
/// sorted and distinct.
pub fn parse_partition_ids(key: &str, v: &str) -> Result<Vec<u32>, StreamError> {
    let mut ids = std::collections::BTreeSet::new();
    let bad = |part: &str, why: &str| {
        err(format!(
            "{key}: '{part}' {why}: expected partition ids and ranges such as \"0,2,5\", \
             \"0-399\" or \"0-99,200,300-399\""
        ))
    };
    let num = |s: &str, part: &str| -> Result<u32, StreamError> {
        s.trim()
            .parse::<u32>()
            .map_err(|_| bad(part, "is not a partition id"))
    };
    for part in v.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(bad(part, "is empty"));
        }
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a, part)?, num(b, part)?);
                if a > b {
                    return Err(bad(part, "is a range whose start is after its end"));
                }
                if (b - a) as usize >= MAX_PARTITION_IDS {
                    return Err(err(format!(
                        "{key}: range '{part}' has more than {MAX_PARTITION_IDS} partitions"
                    )));
                }
                ids.extend(a..=b);
            }
            None => {
                ids.insert(num(part, part)?);
            }
        }
        if ids.len() > MAX_PARTITION_IDS {
            return Err(err(format!(
                "{key}: lists more than {MAX_PARTITION_IDS} partitions"
            )));
        }
    }
    Ok(ids.into_iter().collect())
}

/// A parsed JAAS entry.
#[derive(Debug)]
struct Jaas {
    module: String,
    options: BTreeMap<String, ClientValue>,
}

/// Parses one JAAS login-module entry: `<module> <flag> [name=value ...];` with values quoted
/// (`"..."`, backslash escapes) or bare.
fn parse_jaas(s: &str) -> Result<Jaas, String> {
    let s = s.trim();
    let s = s.strip_suffix(';').unwrap_or(s).trim();
    let mut chars = s.char_indices().peekable();
    let word = |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>| -> String {
        while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
            chars.next();
        }
        let mut w = String::new();
        while let Some(&(_, c)) = chars.peek() {
            if c.is_whitespace() || c == '=' {
                break;
            }
            w.push(c);
            chars.next();
        }
        w
    };
    let module = word(&mut chars);
    if module.is_empty() {
        return Err("no login module".into());
    }
    let flag = word(&mut chars);
    if !matches!(
        flag.to_ascii_lowercase().as_str(),
        "required" | "requisite" | "sufficient" | "optional"
    ) {
        return Err(format!(
            "expected a control flag (required, requisite, sufficient or optional) after the \
             login module, found '{flag}'"
        ));
    }
    let mut options = BTreeMap::new();
    loop {
        let name = word(&mut chars);
        if name.is_empty() {
            if chars.peek().is_some() {
                return Err("an option without a name".into());
            }
            break;
        }
        if chars.next().map(|(_, c)| c) != Some('=') {
            return Err(format!("option '{name}' has no value"));
        }
        let mut value = String::new();
        if chars.peek().map(|(_, c)| *c) == Some('"') {
            chars.next();
            let mut closed = false;
            while let Some((_, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, e)) = chars.next() {
                            value.push(e);
                        }
                    }
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(format!("the value of option '{name}' has no closing quote"));
            }
        } else {
            while let Some(&(_, c)) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        let v = if name.eq_ignore_ascii_case("password") {
            ClientValue::Secret(Secret::new(value))
        } else {
            ClientValue::Plain(value)
        };
        options.insert(name, v);
    }
    Ok(Jaas { module, options })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn stream(extra: &[(&str, &str)]) -> StreamConfig {
        let mut m: BTreeMap<String, String> = [
            ("streamType", "kafka"),
            ("stream.kafka.topic.name", "events"),
            ("stream.kafka.broker.list", "localhost:9092"),
            (
                "stream.kafka.decoder.class.name",
                "org.apache.pinot.plugin.stream.kafka.KafkaJSONMessageDecoder",
            ),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            if v.is_empty() && k.starts_with('-') {
                m.remove(&k[1..]);
            } else {
                m.insert(k.to_string(), v.to_string());
            }
        }
        StreamConfig::parse("$", &m).unwrap()
    }

    fn parse(extra: &[(&str, &str)]) -> KafkaConfig {
        KafkaConfig::parse(&stream(extra)).unwrap()
    }

    fn parse_err(extra: &[(&str, &str)]) -> String {
        KafkaConfig::parse(&stream(extra)).unwrap_err().message
    }

    fn client(c: &KafkaConfig, k: &str) -> Option<String> {
        c.client.get(k).map(|v| v.expose().to_string())
    }

    fn warned(c: &KafkaConfig, needle: &str) -> bool {
        c.warnings.iter().any(|w| w.contains(needle))
    }

    #[test]
    fn test_minimal_config() {
        let c = parse(&[]);
        assert_eq!(c.bootstrap_servers, "localhost:9092");
        assert_eq!(c.topic, "events");
        assert_eq!(c.isolation_level, IsolationLevel::ReadUncommitted);
        assert_eq!(c.partition_ids, None);
        assert!(!c.metadata_populate);
        assert_eq!(c.max_batch_messages, DEFAULT_MAX_BATCH_MESSAGES);
        assert!(c.client.is_empty(), "{:?}", c.client);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        c.check_client_config().unwrap();
    }

    #[test]
    fn test_broker_list_is_required_and_checked() {
        let e = parse_err(&[("-stream.kafka.broker.list", "")]);
        assert!(e.contains("stream.kafka.broker.list is required"), "{e}");
        let e = parse_err(&[
            ("-stream.kafka.broker.list", ""),
            ("bootstrap.servers", "h:1"),
        ]);
        assert!(e.contains("bootstrap.servers is not read"), "{e}");
        let e = parse_err(&[("stream.kafka.broker.list", "h:1,h:notaport")]);
        assert!(
            e.contains("stream.kafka.broker.list") && e.contains("h:notaport"),
            "{e}"
        );
        // bootstrap.servers in the map is overridden by the broker list.
        let c = parse(&[("bootstrap.servers", "elsewhere:1")]);
        let cc = c.client_config("x");
        assert_eq!(cc.get("bootstrap.servers"), Some("localhost:9092"));
    }

    #[test]
    fn test_timeouts() {
        let c = parse(&[
            ("stream.kafka.connection.timeout.millis", "2000"),
            ("stream.kafka.fetch.timeout.millis", "300"),
        ]);
        assert_eq!(c.connection_timeout, Duration::from_secs(2));
        assert_eq!(c.fetch_timeout, Duration::from_millis(300));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let c = parse(&[("stream.kafka.fetch.timeout.millis", "soon")]);
        assert_eq!(c.fetch_timeout, Duration::from_millis(5000));
        assert!(
            warned(&c, "stream.kafka.fetch.timeout.millis: 'soon'"),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn test_isolation_level() {
        let c = parse(&[("stream.kafka.isolation.level", "read_committed")]);
        assert_eq!(c.isolation_level, IsolationLevel::ReadCommitted);
        assert_eq!(
            c.client_config("x").get("isolation.level"),
            Some("read_committed")
        );
        let c = parse(&[("isolation.level", "read_committed")]);
        assert_eq!(c.isolation_level, IsolationLevel::ReadCommitted);
        let e = parse_err(&[("stream.kafka.isolation.level", "committed")]);
        assert!(
            e.contains("stream.kafka.isolation.level") && e.contains("'committed'"),
            "{e}"
        );
        // librdkafka defaults to read_committed; Pinot (Kafka's Java client) does not.
        assert_eq!(
            parse(&[]).client_config("x").get("isolation.level"),
            Some("read_uncommitted")
        );
    }

    #[test]
    fn test_partition_ids() {
        let ids = |v: &str| {
            parse(&[("stream.kafka.partition.ids", v)])
                .partition_ids
                .unwrap()
        };
        assert_eq!(ids("0,2,5"), vec![0, 2, 5]);
        assert_eq!(ids(" 5, 1,1 ,3"), vec![1, 3, 5]);
        assert_eq!(ids("0-399"), (0..400).collect::<Vec<u32>>());
        let mixed = ids("0-99,200,300-399");
        assert_eq!(mixed.len(), 201);
        assert_eq!(mixed[100], 200);
        assert_eq!(ids("3-3,2"), vec![2, 3]);
        assert_eq!(ids("0-9999").len(), 10_000);
        assert_eq!(
            parse(&[("stream.kafka.partition.ids", " ")]).partition_ids,
            None
        );
        for bad in [
            "a",
            "3-1",
            "1,,2",
            "-1",
            "1-",
            "0-10000",
            "0-5000,6000-11000",
        ] {
            let e = parse_err(&[("stream.kafka.partition.ids", bad)]);
            assert!(e.contains("stream.kafka.partition.ids"), "{bad}: {e}");
        }
    }

    #[test]
    fn test_pass_through_and_owned_keys() {
        let c = parse(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "alice"),
            ("sasl.password", "s3cret"),
            ("ssl.ca.location", "/etc/ca.pem"),
            ("max.partition.fetch.bytes", "2097152"),
            ("fetch.min.bytes", "1"),
            ("debug", "fetch"),
            ("realtime.segment.flush.threshold.rows", "1000"),
            ("partition.consumption.rate.limit", "10"),
            ("group.id", "pinot-group"),
            ("enable.auto.commit", "true"),
            ("auto.offset.reset", "earliest"),
            ("client.id", "theirs"),
            (
                "key.deserializer",
                "org.apache.kafka.common.serialization.StringDeserializer",
            ),
        ]);
        for (k, v) in [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "alice"),
            ("sasl.password", "s3cret"),
            ("ssl.ca.location", "/etc/ca.pem"),
            ("max.partition.fetch.bytes", "2097152"),
            ("fetch.min.bytes", "1"),
            ("debug", "fetch"),
        ] {
            assert_eq!(client(&c, k).as_deref(), Some(v), "{k}");
        }
        for k in [
            "realtime.segment.flush.threshold.rows",
            "partition.consumption.rate.limit",
            "group.id",
            "enable.auto.commit",
            "auto.offset.reset",
            "client.id",
            "key.deserializer",
        ] {
            assert_eq!(client(&c, k), None, "{k} must not be passed");
        }
        assert!(warned(&c, "group.id is a consumer-group setting"));
        assert!(warned(&c, "enable.auto.commit is a consumer-group setting"));
        assert!(warned(&c, "auto.offset.reset is ignored"));
        assert!(!warned(&c, "client.id"), "{:?}", c.warnings);
        assert!(!warned(&c, "key.deserializer"), "{:?}", c.warnings);
        let cc = c.client_config("riffle-events-0");
        assert_eq!(cc.get("client.id"), Some("riffle-events-0"));
        assert!(cc.get("group.id").unwrap().starts_with("riffle-"));
        assert_eq!(cc.get("enable.auto.commit"), Some("false"));
        assert_eq!(cc.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(cc.get("auto.offset.reset"), Some("error"));
        assert_eq!(cc.get("sasl.password"), Some("s3cret"));
        c.check_client_config().unwrap();
    }

    #[test]
    fn test_riffle_defaults_and_overrides() {
        let c = parse(&[]);
        let cc = c.client_config("x");
        assert_eq!(cc.get("queued.min.messages"), Some("20000"));
        assert_eq!(cc.get("queued.max.messages.kbytes"), Some("16384"));
        assert_eq!(cc.get("fetch.queue.backoff.ms"), Some("10"));
        assert_eq!(cc.get("reconnect.backoff.max.ms"), Some("1000"));
        c.check_client_config().unwrap();
        // The table's own values win.
        let c = parse(&[
            ("fetch.queue.backoff.ms", "500"),
            ("reconnect.backoff.max.ms", "10000"),
        ]);
        let cc = c.client_config("x");
        assert_eq!(cc.get("fetch.queue.backoff.ms"), Some("500"));
        assert_eq!(cc.get("reconnect.backoff.max.ms"), Some("10000"));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn test_java_keys_are_translated() {
        let c = parse(&[
            ("fetch.max.wait.ms", "250"),
            ("receive.buffer.bytes", "65536"),
            ("request.timeout.ms", "40000"),
            ("max.poll.records", "500"),
            ("ssl.endpoint.identification.algorithm", ""),
        ]);
        assert_eq!(client(&c, "fetch.wait.max.ms").as_deref(), Some("250"));
        assert_eq!(
            client(&c, "socket.receive.buffer.bytes").as_deref(),
            Some("65536")
        );
        assert_eq!(client(&c, "socket.timeout.ms").as_deref(), Some("40000"));
        assert_eq!(
            client(&c, "ssl.endpoint.identification.algorithm").as_deref(),
            Some("none")
        );
        assert_eq!(c.max_batch_messages, 500);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        c.check_client_config().unwrap();
        let e = parse_err(&[("max.poll.records", "0")]);
        assert!(e.contains("max.poll.records"), "{e}");
    }

    #[test]
    fn test_jaas_plain_and_scram() {
        let c = parse(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.plain.PlainLoginModule required \
                 username=\"alice\" password=\"p@ss word\";",
            ),
        ]);
        assert_eq!(client(&c, "sasl.username").as_deref(), Some("alice"));
        assert_eq!(client(&c, "sasl.password").as_deref(), Some("p@ss word"));
        assert_eq!(client(&c, "sasl.mechanism").as_deref(), Some("PLAIN"));
        assert!(matches!(
            c.client.get("sasl.password"),
            Some(ClientValue::Secret(_))
        ));
        assert_eq!(client(&c, "sasl.jaas.config"), None);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        c.check_client_config().unwrap();

        // SCRAM, a shaded class name, an escaped quote, and an explicit mechanism kept.
        let c = parse(&[
            ("sasl.mechanism", "SCRAM-SHA-256"),
            (
                "sasl.jaas.config",
                "org.apache.pinot.shaded.org.apache.kafka.common.security.scram.ScramLoginModule \
                 required username=bob password=\"a\\\"b\"",
            ),
        ]);
        assert_eq!(client(&c, "sasl.username").as_deref(), Some("bob"));
        assert_eq!(client(&c, "sasl.password").as_deref(), Some("a\"b"));
        assert_eq!(
            client(&c, "sasl.mechanism").as_deref(),
            Some("SCRAM-SHA-256")
        );

        // Explicit librdkafka keys win, with a warning when they differ.
        let c = parse(&[
            ("sasl.username", "carol"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.plain.PlainLoginModule required \
                 username=\"alice\" password=\"x\";",
            ),
        ]);
        assert_eq!(client(&c, "sasl.username").as_deref(), Some("carol"));
        assert!(warned(
            &c,
            "sasl.username and the username of sasl.jaas.config differ"
        ));
    }

    #[test]
    fn test_jaas_that_cannot_be_translated_is_reported() {
        let c = parse(&[(
            "sasl.jaas.config",
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;",
        )]);
        assert!(warned(&c, "sasl.oauthbearer"), "{:?}", c.warnings);
        assert_eq!(client(&c, "sasl.username"), None);
        let c = parse(&[("sasl.jaas.config", "PlainLoginModule username=\"a\"")]);
        assert!(
            warned(&c, "sasl.jaas.config cannot be read"),
            "{:?}",
            c.warnings
        );
        let c = parse(&[(
            "sasl.jaas.config",
            "org.apache.kafka.common.security.plain.PlainLoginModule required password=\"x\";",
        )]);
        assert!(warned(&c, "no username="), "{:?}", c.warnings);
    }

    #[test]
    fn test_trust_and_key_stores() {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("ca.truststore");
        std::fs::write(
            &pem,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let jks = dir.path().join("kafka.client.truststore.jks");
        std::fs::write(&jks, [0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2]).unwrap();
        let pem_s = pem.display().to_string();
        let jks_s = jks.display().to_string();

        // A PEM trust store becomes ssl.ca.location; its password is not needed.
        let c = parse(&[
            ("ssl.truststore.location", &pem_s),
            ("ssl.truststore.password", "changeit"),
        ]);
        assert_eq!(client(&c, "ssl.ca.location"), Some(pem_s.clone()));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let c = parse(&[
            ("ssl.truststore.location", "/x/ca.jks"),
            ("ssl.truststore.type", "PEM"),
        ]);
        assert_eq!(client(&c, "ssl.ca.location").as_deref(), Some("/x/ca.jks"));

        // A JKS one cannot be read: reported.
        let c = parse(&[("ssl.truststore.location", &jks_s)]);
        assert_eq!(client(&c, "ssl.ca.location"), None);
        assert!(
            warned(&c, "is a JKS trust store") && warned(&c, "ssl.ca.location"),
            "{:?}",
            c.warnings
        );
        let c = parse(&[
            ("ssl.truststore.location", "/x/ca.p12"),
            ("ssl.truststore.type", "PKCS12"),
        ]);
        assert!(warned(&c, "PKCS#12 trust store"), "{:?}", c.warnings);

        // Key stores: PKCS#12 is read by librdkafka, PEM is split into cert and key, JKS is
        // reported.
        let c = parse(&[
            ("ssl.keystore.location", "/x/client.p12"),
            ("ssl.keystore.password", "kp"),
        ]);
        assert_eq!(
            client(&c, "ssl.keystore.location").as_deref(),
            Some("/x/client.p12")
        );
        assert_eq!(client(&c, "ssl.keystore.password").as_deref(), Some("kp"));
        let c = parse(&[
            ("ssl.keystore.location", "/x/client.pem"),
            ("ssl.keystore.type", "PEM"),
            ("ssl.key.password", "kp"),
        ]);
        assert_eq!(
            client(&c, "ssl.certificate.location").as_deref(),
            Some("/x/client.pem")
        );
        assert_eq!(
            client(&c, "ssl.key.location").as_deref(),
            Some("/x/client.pem")
        );
        let c = parse(&[("ssl.keystore.location", "/x/client.keystore.jks")]);
        assert!(warned(&c, "is a JKS key store"), "{:?}", c.warnings);
        assert_eq!(client(&c, "ssl.keystore.location"), None);
    }

    /// Pinot's inline TLS keys: base64 of PEM, or of DER (which becomes PEM around the same
    /// base64), for the CA, the client certificate and the client key (a secret).
    #[test]
    fn test_pinot_inline_tls_material_becomes_pem() {
        use base64::Engine as _;
        let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
        let ca = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n";
        let cert_der = [0x30u8, 0x82, 0x01, 0x0a, 0xde, 0xad, 0xbe, 0xef];
        let key_der = [0x30u8, 0x82, 0x04, 0xbe, 0x02, 0x01, 0x00, 0x30, 0x0d, 0x06];
        let c = parse(&[
            ("stream.kafka.ssl.server.certificate", &b64(ca.as_bytes())),
            ("stream.kafka.ssl.client.certificate", &b64(&cert_der)),
            ("stream.kafka.ssl.client.key", &b64(&key_der)),
            ("stream.kafka.ssl.certificate.type", "X.509"),
            ("stream.kafka.ssl.client.key.algorithm", "RSA"),
        ]);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(client(&c, "ssl.ca.pem").as_deref(), Some(ca));
        assert_eq!(
            client(&c, "ssl.certificate.pem").unwrap(),
            format!(
                "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                b64(&cert_der)
            )
        );
        let key = client(&c, "ssl.key.pem").unwrap();
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{key}");
        assert!(key.contains(&b64(&key_der)));
        assert!(
            !format!("{c:?}").contains(&b64(&key_der)),
            "the key is a secret"
        );
        // As in Pinot, TLS material makes SSL the default protocol; an explicit one stays.
        assert_eq!(client(&c, "security.protocol").as_deref(), Some("SSL"));
        let c = parse(&[
            ("stream.kafka.ssl.server.certificate", &b64(ca.as_bytes())),
            ("security.protocol", "SASL_SSL"),
        ]);
        assert_eq!(client(&c, "security.protocol").as_deref(), Some("SASL_SSL"));
        c.check_client_config().unwrap();

        for (k, v, needle) in [
            (
                "stream.kafka.ssl.server.certificate",
                "not base64!",
                "not base64",
            ),
            ("stream.kafka.ssl.client.key", "AAAA", "neither PEM nor DER"),
            (
                "stream.kafka.ssl.certificate.type",
                "PKCS12",
                "certificates are X.509",
            ),
        ] {
            let e = parse_err(&[(k, v)]);
            assert!(e.contains(k) && e.contains(needle), "{k}: {e}");
        }
    }

    #[test]
    fn test_keys_not_honoured_are_reported() {
        let c = parse(&[
            ("sasl.kerberos.kinit.cmd", "rm -rf /"),
            ("plugin.library.paths", "/tmp/evil.so"),
            ("ssl.protocol", "TLSv1.3"),
            ("interceptor.classes", "com.example.Interceptor"),
            ("stream.kafka.consumer.prop.max.poll.records", "10"),
            ("stream.kafka.buffer.size", "512000"),
            ("stream.kafka.nosuch", "1"),
            ("config.providers", "file"),
            ("ssl.key.password", "${file:/etc/secrets:key}"),
        ]);
        for k in [
            "sasl.kerberos.kinit.cmd",
            "plugin.library.paths",
            "ssl.protocol",
        ] {
            assert_eq!(client(&c, k), None, "{k}");
        }
        for needle in [
            "sasl.kerberos.kinit.cmd is refused",
            "plugin.library.paths is refused",
            "ssl.protocol is a setting of the Java Kafka client",
            "interceptor.classes is not a Kafka consumer setting",
            "write the Kafka key itself, 'max.poll.records'",
            "stream.kafka.buffer.size is a setting of Pinot's legacy",
            "stream.kafka.nosuch is not a Kafka stream setting",
            "config.providers: Java config providers are not supported",
            "ssl.key.password: the value looks like a Java config-provider reference",
        ] {
            assert!(
                warned(&c, needle),
                "no warning '{needle}' in {:#?}",
                c.warnings
            );
        }
        // The secret itself never appears in a warning.
        assert!(
            !c.warnings.iter().any(|w| w.contains("/etc/secrets")),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn test_secrets_are_redacted_in_debug() {
        let c = parse(&[
            ("sasl.password", "pw-one"),
            ("ssl.key.password", "pw-two"),
            ("ssl.keystore.password", "pw-three"),
            ("sasl.oauthbearer.client.secret", "pw-four"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.plain.PlainLoginModule required \
                 username=\"u\" password=\"pw-five\";",
            ),
        ]);
        let shown = format!("{c:?} {:?}", c.client);
        for s in ["pw-one", "pw-two", "pw-three", "pw-four", "pw-five"] {
            assert!(!shown.contains(s), "{s} shown in {shown}");
        }
        assert!(shown.contains("<redacted>"), "{shown}");
        assert_eq!(format!("{}", Secret::new("x")), "<redacted>");
        // The client still gets them.
        assert_eq!(client(&c, "ssl.key.password").as_deref(), Some("pw-two"));
    }

    #[test]
    fn test_bad_client_values_name_the_key_not_the_secret() {
        let c = parse(&[("fetch.min.bytes", "lots")]);
        let e = c.check_client_config().unwrap_err();
        assert_eq!(e.kind, riffle_stream::StreamErrorKind::InvalidConfig);
        assert!(
            e.message.contains("fetch.min.bytes") && e.message.contains("'lots'"),
            "{e}"
        );
        let c = parse(&[("security.protocol", "carrier_pigeon")]);
        let e = c.check_client_config().unwrap_err();
        assert!(e.message.contains("security.protocol"), "{e}");
        // A secret value is never repeated.
        let mut c = parse(&[]);
        c.client.insert(
            "sasl.password".into(),
            ClientValue::Secret(Secret::new("hunter2")),
        );
        c.client.insert(
            "fetch.wait.max.ms".into(),
            ClientValue::Secret(Secret::new("hunter2")),
        );
        let e = c.check_client_config().unwrap_err();
        assert!(!e.message.contains("hunter2"), "{e}");
        assert!(e.message.contains("<redacted>"), "{e}");
    }

    #[test]
    fn test_jaas_parser() {
        let j = parse_jaas(" com.example.M  optional a=1 b=\"two words\" c=\"x\\\\y\" ; ").unwrap();
        assert_eq!(j.module, "com.example.M");
        assert_eq!(j.options["a"].expose(), "1");
        assert_eq!(j.options["b"].expose(), "two words");
        assert_eq!(j.options["c"].expose(), "x\\y");
        assert!(parse_jaas("").is_err());
        assert!(parse_jaas("M required a=\"open").is_err());
        assert!(parse_jaas("M required a").is_err());
    }
}
