//! The Kinesis stream config: Pinot's Kinesis keys parsed into a typed [`KinesisConfig`].
//!
//! As in Pinot, the stream keys are `stream.kinesis.*` and the Kinesis client keys are bare
//! keys of the same map (`region`, `accessKey`, ...); Riffle also accepts the client keys
//! under `stream.kinesis.`.
//!
//! | Key | Meaning |
//! |---|---|
//! | `stream.kinesis.topic.name` | required: the stream's name |
//! | `region` | required: the AWS region, e.g. `us-east-1` |
//! | `endpoint` | another endpoint (a mock, a VPC endpoint); default `https://kinesis.<region>.amazonaws.com` |
//! | `accessKey`, `secretKey` | static credentials; else `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`) of the server's environment, else the `[default]` (or `AWS_PROFILE`) profile of `~/.aws/credentials` |
//! | `sessionToken` | a session token with static temporary credentials (a Riffle key) |
//! | `maxRecordsToFetch` | records per `GetRecords` call, 1 to 10,000 (default 10,000, as Pinot) |
//! | `requests_per_second_limit` | `GetRecords` calls per second per shard (default 5, Kinesis' own limit per shard; Pinot's is 1) |
//! | `shardIteratorType` | `TRIM_HORIZON` starts new tables' shards at their beginning when `stream.kinesis.consumer.prop.auto.offset.reset` is not written (`LATEST`, the default, at their end) |
//!
//! Pinot's IAM-role keys (`iamRoleBasedAccessEnabled` = `true`, `roleArn`, ...) need STS,
//! which this plugin does not call: such a table is refused naming the key, rather than
//! consuming with other credentials. Unknown `stream.kinesis.*` keys are warnings.

use std::collections::BTreeMap;
use std::path::PathBuf;

use riffle_stream::{StreamConfig, StreamError};

use crate::client::MAX_RECORDS_PER_CALL;
use crate::sigv4::Credentials;

/// Records per `GetRecords` call unless `maxRecordsToFetch` says otherwise.
pub const DEFAULT_MAX_RECORDS: u32 = MAX_RECORDS_PER_CALL;
/// `GetRecords` calls per second per shard unless `requests_per_second_limit` says otherwise.
pub const DEFAULT_REQUESTS_PER_SECOND: f64 = 5.0;

/// Keys of the namespace this plugin reads (after `stream.kinesis.`), and Pinot's common
/// stream keys that are not the plugin's business.
const KNOWN: &[&str] = &[
    "topic.name",
    "region",
    "endpoint",
    "accessKey",
    "secretKey",
    "sessionToken",
    "maxRecordsToFetch",
    "requests_per_second_limit",
    "shardIteratorType",
    "iamRoleBasedAccessEnabled",
    "decoder.class.name",
    "consumer.factory.class.name",
    "consumer.type",
    "consumer.prop.auto.offset.reset",
    "connection.timeout.millis",
    "fetch.timeout.millis",
    "idle.timeout.millis",
    "metadata.populate",
];

/// A parsed Kinesis stream config.
#[derive(Clone, Debug)]
pub struct KinesisConfig {
    /// The stream's name.
    pub stream: String,
    /// The region.
    pub region: String,
    /// The endpoint, if not AWS's.
    pub endpoint: Option<String>,
    /// Credentials.
    pub credentials: Credentials,
    /// Records per call.
    pub max_records: u32,
    /// Calls per second per shard.
    pub requests_per_second: f64,
    /// Keys accepted but not honoured.
    pub warnings: Vec<String>,
}

/// Where credentials may come from besides the config: the environment and the home
/// directory (injected for tests).
pub struct Sources<'a> {
    /// An environment variable.
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl Sources<'_> {
    /// The server's environment.
    pub fn process() -> Sources<'static> {
        Sources {
            env: &|k| std::env::var(k).ok().filter(|v| !v.is_empty()),
        }
    }
}

impl KinesisConfig {
    /// Parses a stream config with the server's environment as the fallback for credentials.
    pub fn parse(config: &StreamConfig) -> Result<KinesisConfig, StreamError> {
        Self::parse_with(config, &Sources::process())
    }

    /// Parses a stream config; errors name the key.
    pub fn parse_with(
        config: &StreamConfig,
        sources: &Sources<'_>,
    ) -> Result<KinesisConfig, StreamError> {
        // Pinot's Kinesis keys are bare keys of the map; `stream.kinesis.*` is accepted too.
        let get = |k: &str| {
            config
                .raw
                .get(k)
                .map(|s| s.trim())
                .filter(|v| !v.is_empty())
                .or_else(|| config.plugin_value(k))
        };
        let region = get("region").ok_or_else(|| {
            StreamError::config("region is required: expected an AWS region such as \"us-east-1\"")
        })?;
        if !region
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-')
        {
            return Err(StreamError::config(format!(
                "region '{region}' is not a region name: expected letters, digits and '-', e.g. \"us-east-1\""
            )));
        }
        if get("iamRoleBasedAccessEnabled").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Err(StreamError::new(
                riffle_stream::StreamErrorKind::Unsupported,
                "iamRoleBasedAccessEnabled: assuming an IAM role is not supported; give \
                     accessKey and secretKey or set AWS_ACCESS_KEY_ID and \
                     AWS_SECRET_ACCESS_KEY for the server",
            ));
        }
        let max_records = riffle_stream::wire::bounded_count(
            "maxRecordsToFetch",
            get("maxRecordsToFetch"),
            DEFAULT_MAX_RECORDS,
            1..=MAX_RECORDS_PER_CALL,
        )?;
        let requests_per_second = match get("requests_per_second_limit") {
            None => DEFAULT_REQUESTS_PER_SECOND,
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n > 0.0)
                .ok_or_else(|| {
                    StreamError::config(format!(
                        "requests_per_second_limit '{v}' is not a positive number"
                    ))
                })?,
        };
        if let Some(v) = get("shardIteratorType") {
            if ![
                "TRIM_HORIZON",
                "LATEST",
                "AT_SEQUENCE_NUMBER",
                "AFTER_SEQUENCE_NUMBER",
                "AT_TIMESTAMP",
            ]
            .iter()
            .any(|t| t.eq_ignore_ascii_case(v))
            {
                return Err(StreamError::config(format!(
                    "shardIteratorType '{v}' is not one of TRIM_HORIZON, LATEST, AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, AT_TIMESTAMP"
                )));
            }
        }
        let endpoint = get("endpoint").map(str::to_string);
        let credentials = credentials(
            get("accessKey"),
            get("secretKey"),
            get("sessionToken"),
            sources,
        )?;
        let mut warnings = Vec::new();
        for k in config.raw.keys() {
            let Some(suffix) = k
                .strip_prefix("stream.kinesis.")
                .or_else(|| k.strip_prefix("stream.Kinesis."))
            else {
                continue;
            };
            let known = KNOWN.contains(&suffix)
                || suffix.starts_with("decoder.prop.")
                || [
                    "roleArn",
                    "roleSessionName",
                    "externalId",
                    "sessionDurationSeconds",
                    "asyncSessionUpdateEnabled",
                ]
                .contains(&suffix);
            if !known {
                warnings.push(format!("{k} is not a key of the kinesis plugin; ignored"));
            }
        }
        Ok(KinesisConfig {
            stream: config.topic.clone(),
            region: region.to_string(),
            endpoint,
            credentials,
            max_records,
            requests_per_second,
            warnings,
        })
    }
}

/// Credentials from the config, else the environment, else the shared credentials file.
fn credentials(
    access: Option<&str>,
    secret: Option<&str>,
    token: Option<&str>,
    sources: &Sources<'_>,
) -> Result<Credentials, StreamError> {
    match (access, secret) {
        (Some(a), Some(s)) => {
            return Ok(Credentials {
                access_key: a.to_string(),
                secret_key: s.to_string(),
                session_token: token.map(str::to_string),
            })
        }
        (Some(_), None) => return Err(StreamError::config("accessKey is set without secretKey")),
        (None, Some(_)) => return Err(StreamError::config("secretKey is set without accessKey")),
        (None, None) => {}
    }
    let env = sources.env;
    if let (Some(a), Some(s)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        return Ok(Credentials {
            access_key: a,
            secret_key: s,
            session_token: env("AWS_SESSION_TOKEN"),
        });
    }
    let file = env("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".aws").join("credentials")));
    let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".into());
    if let Some(path) = file {
        if let Ok(text) = std::fs::read_to_string(&path) {
            let sections = ini_sections(&text);
            if let Some(p) = sections.get(&profile) {
                if let (Some(a), Some(s)) =
                    (p.get("aws_access_key_id"), p.get("aws_secret_access_key"))
                {
                    return Ok(Credentials {
                        access_key: a.clone(),
                        secret_key: s.clone(),
                        session_token: p.get("aws_session_token").cloned(),
                    });
                }
            }
        }
    }
    Err(StreamError::config(format!(
        "no AWS credentials: set accessKey and secretKey in the stream config, or AWS_ACCESS_KEY_ID and \
         AWS_SECRET_ACCESS_KEY for the server, or a [{profile}] profile in ~/.aws/credentials"
    )))
}

/// The `[section]` key = value pairs of an INI file.
fn ini_sections(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(name.trim().to_string());
            continue;
        }
        if let (Some(section), Some((k, v))) = (&current, line.split_once('=')) {
            out.entry(section.clone())
                .or_default()
                .insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(extra: &[(&str, &str)]) -> StreamConfig {
        let mut m: BTreeMap<String, String> = [
            ("streamType", "kinesis"),
            ("stream.kinesis.topic.name", "events"),
            (
                "stream.kinesis.decoder.class.name",
                "org.apache.pinot.plugin.inputformat.json.JSONMessageDecoder",
            ),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            m.insert(k.to_string(), v.to_string());
        }
        StreamConfig::parse("$.streamConfigs", &m).unwrap()
    }

    fn no_env() -> Sources<'static> {
        Sources { env: &|_| None }
    }

    #[test]
    fn test_keys_parse_with_defaults() {
        let c = KinesisConfig::parse_with(
            &stream(&[
                ("region", "us-west-2"),
                ("accessKey", "AK"),
                ("secretKey", "SK"),
            ]),
            &no_env(),
        )
        .unwrap();
        assert_eq!(c.stream, "events");
        assert_eq!(c.region, "us-west-2");
        assert_eq!(c.max_records, 10_000);
        assert_eq!(c.requests_per_second, 5.0);
        assert_eq!(c.credentials.access_key, "AK");
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn test_bad_keys_are_named() {
        let base = [("accessKey", "AK"), ("secretKey", "SK")];
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "region is required"),
            (&[("region", "us east")], "region 'us east'"),
            (
                &[("region", "us-east-1"), ("maxRecordsToFetch", "0")],
                "maxRecordsToFetch '0'",
            ),
            (
                &[("region", "us-east-1"), ("maxRecordsToFetch", "20000")],
                "maxRecordsToFetch '20000'",
            ),
            (
                &[("region", "us-east-1"), ("requests_per_second_limit", "-1")],
                "requests_per_second_limit '-1'",
            ),
            (
                &[("region", "us-east-1"), ("shardIteratorType", "OLDEST")],
                "shardIteratorType 'OLDEST'",
            ),
            (
                &[
                    ("region", "us-east-1"),
                    ("iamRoleBasedAccessEnabled", "true"),
                ],
                "iamRoleBasedAccessEnabled",
            ),
        ];
        for (extra, want) in cases {
            let mut all: Vec<(&str, &str)> = base.to_vec();
            all.extend_from_slice(extra);
            let e = KinesisConfig::parse_with(&stream(&all), &no_env()).unwrap_err();
            assert!(e.message.contains(want), "{extra:?}: {e}");
        }
        let e = KinesisConfig::parse_with(
            &stream(&[("region", "us-east-1"), ("accessKey", "AK")]),
            &no_env(),
        )
        .unwrap_err();
        assert!(e.message.contains("accessKey is set without"), "{e}");
        let e =
            KinesisConfig::parse_with(&stream(&[("region", "us-east-1")]), &no_env()).unwrap_err();
        assert!(e.message.starts_with("no AWS credentials"), "{e}");
    }

    #[test]
    fn test_credentials_from_environment_and_file() {
        let env = |k: &str| match k {
            "AWS_ACCESS_KEY_ID" => Some("ENVAK".to_string()),
            "AWS_SECRET_ACCESS_KEY" => Some("ENVSK".to_string()),
            "AWS_SESSION_TOKEN" => Some("TOK".to_string()),
            _ => None,
        };
        let c =
            KinesisConfig::parse_with(&stream(&[("region", "us-east-1")]), &Sources { env: &env })
                .unwrap();
        assert_eq!(c.credentials.access_key, "ENVAK");
        assert_eq!(c.credentials.session_token.as_deref(), Some("TOK"));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        std::fs::write(
            &path,
            "[default]\naws_access_key_id = DAK\naws_secret_access_key = DSK\n\n[other]\naws_access_key_id=OAK\naws_secret_access_key=OSK\n",
        )
        .unwrap();
        let p = path.to_string_lossy().into_owned();
        let env = move |k: &str| match k {
            "AWS_SHARED_CREDENTIALS_FILE" => Some(p.clone()),
            "AWS_PROFILE" => Some("other".to_string()),
            _ => None,
        };
        let c =
            KinesisConfig::parse_with(&stream(&[("region", "us-east-1")]), &Sources { env: &env })
                .unwrap();
        assert_eq!(c.credentials.access_key, "OAK");
        assert_eq!(c.credentials.secret_key, "OSK");
    }

    #[test]
    fn test_unknown_keys_warn_and_iterator_type_sets_the_start() {
        let s = stream(&[
            ("region", "us-east-1"),
            ("accessKey", "AK"),
            ("secretKey", "SK"),
            ("shardIteratorType", "TRIM_HORIZON"),
            ("stream.kinesis.colour", "blue"),
        ]);
        let c = KinesisConfig::parse_with(&s, &no_env()).unwrap();
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("stream.kinesis.colour"));
        assert_eq!(s.offset_criteria, riffle_stream::OffsetCriteria::Smallest);
        // Riffle also reads the client keys under the stream prefix.
        let s = stream(&[
            ("stream.kinesis.region", "eu-west-1"),
            ("stream.kinesis.accessKey", "AK"),
            ("stream.kinesis.secretKey", "SK"),
            ("shardIteratorType", "TRIM_HORIZON"),
            ("stream.kinesis.consumer.prop.auto.offset.reset", "largest"),
        ]);
        assert_eq!(
            KinesisConfig::parse_with(&s, &no_env()).unwrap().region,
            "eu-west-1"
        );
        assert_eq!(s.offset_criteria, riffle_stream::OffsetCriteria::Largest);
    }
}
