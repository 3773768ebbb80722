//! The Kinesis JSON 1.1 API over HTTP(S), signed with SigV4: the calls the plugin makes
//! (`ListShards`, `GetShardIterator`, `GetRecords`) and, for tests and tools, the calls that
//! write (`CreateStream`, `PutRecords`, `SplitShard`, `MergeShards`).
//!
//! Every call is one `POST /` with `X-Amz-Target: Kinesis_20131202.<Op>`. A failure answers
//! with a JSON body `{"__type": "<Exception>", "message": ...}`; [`classify`] maps the
//! exception names to stream error kinds.

use std::time::Duration;

use base64::Engine;
use riffle_common::now_ms;
use riffle_stream::{StreamError, StreamErrorKind};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::sigv4::{self, Credentials};

/// A Kinesis endpoint with its region and credentials.
#[derive(Clone, Debug)]
pub struct KinesisClient {
    http: reqwest::Client,
    endpoint: reqwest::Url,
    host: String,
    region: String,
    creds: Credentials,
}

/// One shard as `ListShards` describes it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Shard {
    /// `shardId-000000000003`.
    pub shard_id: String,
    /// The shard this one was split from or merged from.
    pub parent_shard_id: Option<String>,
    /// The other shard of a merge.
    pub adjacent_parent_shard_id: Option<String>,
    /// Its sequence numbers.
    pub sequence_number_range: SequenceNumberRange,
    /// The hash keys it serves.
    pub hash_key_range: Option<HashKeyRange>,
}

/// The sequence numbers of a shard; a closed shard has an end.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct SequenceNumberRange {
    /// The first sequence number of the shard.
    pub starting_sequence_number: String,
    /// The last sequence number of a closed shard.
    pub ending_sequence_number: Option<String>,
}

/// The hash keys of a shard (decimal 128-bit numbers).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct HashKeyRange {
    /// The smallest hash key.
    pub starting_hash_key: String,
    /// The largest hash key.
    pub ending_hash_key: String,
}

impl Shard {
    /// Whether the shard is closed (split or merged): it has an ending sequence number.
    pub fn is_closed(&self) -> bool {
        self.sequence_number_range.ending_sequence_number.is_some()
    }

    /// The parents of the shard.
    pub fn parents(&self) -> impl Iterator<Item = &str> {
        self.parent_shard_id
            .iter()
            .chain(self.adjacent_parent_shard_id.iter())
            .map(|s| s.as_str())
    }
}

/// One record of `GetRecords`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Record {
    /// Its sequence number (a decimal of up to 128 digits).
    pub sequence_number: String,
    /// When Kinesis received it, in epoch seconds with a fraction.
    pub approximate_arrival_timestamp: Option<f64>,
    /// The payload, base64.
    pub data: String,
    /// The partition key it was written with.
    pub partition_key: Option<String>,
}

impl Record {
    /// The payload bytes.
    pub fn payload(&self) -> Result<Vec<u8>, StreamError> {
        base64::engine::general_purpose::STANDARD
            .decode(self.data.as_bytes())
            .map_err(|e| {
                StreamError::new(
                    StreamErrorKind::Fatal,
                    format!(
                        "record {} has a Data field that is not base64: {e}",
                        self.sequence_number
                    ),
                )
            })
    }

    /// The arrival time in epoch milliseconds.
    pub fn arrival_ms(&self) -> Option<i64> {
        self.approximate_arrival_timestamp
            .filter(|t| t.is_finite())
            .map(|t| (t * 1000.0).round() as i64)
    }
}

/// What `GetRecords` answers.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Records {
    /// The records, in order.
    #[serde(default)]
    pub records: Vec<Record>,
    /// The iterator to continue with; absent once a closed shard is read to its end.
    pub next_shard_iterator: Option<String>,
    /// How far behind the tip of the shard the answer is.
    pub millis_behind_latest: Option<i64>,
}

/// Where `GetShardIterator` starts.
#[derive(Clone, Debug, PartialEq)]
pub enum IteratorStart {
    /// `TRIM_HORIZON`: the oldest record kept.
    TrimHorizon,
    /// `LATEST`: after the newest record.
    Latest,
    /// `AT_SEQUENCE_NUMBER`.
    At(String),
    /// `AFTER_SEQUENCE_NUMBER`.
    After(String),
    /// `AT_TIMESTAMP`, epoch milliseconds.
    AtTimestamp(i64),
}

/// Kinesis' limit on records per `GetRecords`.
pub const MAX_RECORDS_PER_CALL: u32 = 10_000;

impl KinesisClient {
    /// A client for `endpoint` (`https://kinesis.<region>.amazonaws.com` when `None`).
    pub fn new(
        region: &str,
        endpoint: Option<&str>,
        creds: Credentials,
        connect_timeout: Duration,
    ) -> Result<KinesisClient, StreamError> {
        let default = format!("https://kinesis.{region}.amazonaws.com");
        let raw = endpoint.unwrap_or(&default);
        let endpoint = reqwest::Url::parse(raw).map_err(|e| {
            StreamError::config(format!(
                "endpoint '{raw}' is not a URL: {e} (expected e.g. https://kinesis.{region}.amazonaws.com)"
            ))
        })?;
        if !matches!(endpoint.scheme(), "http" | "https") {
            return Err(StreamError::config(format!(
                "endpoint '{raw}' must be http:// or https://"
            )));
        }
        let host = match (endpoint.host_str(), endpoint.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => {
                return Err(StreamError::config(format!("endpoint '{raw}' has no host")));
            }
        };
        let http = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .build()
            .map_err(|e| {
                StreamError::new(
                    StreamErrorKind::Fatal,
                    format!("cannot build http client: {e}"),
                )
            })?;
        Ok(KinesisClient {
            http,
            endpoint,
            host,
            region: region.to_string(),
            creds,
        })
    }

    /// The endpoint's URL.
    pub fn endpoint(&self) -> &str {
        self.endpoint.as_str()
    }

    /// Calls `op` with a JSON body; the answer within `timeout`.
    pub async fn call<T: DeserializeOwned>(
        &self,
        op: &str,
        body: &Value,
        timeout: Duration,
    ) -> Result<T, StreamError> {
        let body = serde_json::to_vec(body).map_err(|e| {
            StreamError::new(StreamErrorKind::Fatal, format!("cannot encode {op}: {e}"))
        })?;
        let date = sigv4::amz_date(now_ms());
        let target = format!("Kinesis_20131202.{op}");
        let content_type = "application/x-amz-json-1.1";
        let mut headers = vec![
            ("content-type", content_type),
            ("host", self.host.as_str()),
            ("x-amz-date", date.as_str()),
            ("x-amz-target", target.as_str()),
        ];
        if let Some(t) = &self.creds.session_token {
            headers.push(("x-amz-security-token", t.as_str()));
        }
        let auth = sigv4::authorization(
            &self.creds,
            &self.region,
            "kinesis",
            &date,
            &sigv4::Request {
                method: "POST",
                path: "/",
                query: "",
                headers: &headers,
                body: &body,
            },
        );
        let mut req = self
            .http
            .post(self.endpoint.clone())
            .timeout(timeout.max(Duration::from_millis(100)))
            .header("authorization", auth)
            .body(body);
        for (k, v) in &headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.map_err(|e| transport(op, e))?;
        let status = resp.status();
        let bytes = read_capped(op, resp, MAX_RESPONSE_BYTES).await?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                StreamError::new(
                    StreamErrorKind::Fatal,
                    format!("kinesis {op} answered with an unexpected body: {e}"),
                )
            });
        }
        Err(api_error(op, status.as_u16(), &bytes))
    }

    /// Every shard of a stream (following `NextToken`).
    pub async fn list_shards(
        &self,
        stream: &str,
        timeout: Duration,
    ) -> Result<Vec<Shard>, StreamError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Page {
            #[serde(default)]
            shards: Vec<Shard>,
            next_token: Option<String>,
        }
        let mut out = Vec::new();
        let mut body = json!({ "StreamName": stream });
        loop {
            let page: Page = self.call("ListShards", &body, timeout).await?;
            out.extend(page.shards);
            match page.next_token {
                Some(t) if !t.is_empty() => body = json!({ "NextToken": t }),
                _ => return Ok(out),
            }
        }
    }

    /// A shard iterator.
    pub async fn shard_iterator(
        &self,
        stream: &str,
        shard: &str,
        start: &IteratorStart,
        timeout: Duration,
    ) -> Result<String, StreamError> {
        let mut body = json!({ "StreamName": stream, "ShardId": shard });
        let ty = match start {
            IteratorStart::TrimHorizon => "TRIM_HORIZON",
            IteratorStart::Latest => "LATEST",
            IteratorStart::At(s) => {
                body["StartingSequenceNumber"] = json!(s);
                "AT_SEQUENCE_NUMBER"
            }
            IteratorStart::After(s) => {
                body["StartingSequenceNumber"] = json!(s);
                "AFTER_SEQUENCE_NUMBER"
            }
            IteratorStart::AtTimestamp(ms) => {
                body["Timestamp"] = json!(*ms as f64 / 1000.0);
                "AT_TIMESTAMP"
            }
        };
        body["ShardIteratorType"] = json!(ty);
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct It {
            shard_iterator: Option<String>,
        }
        let it: It = self.call("GetShardIterator", &body, timeout).await?;
        it.shard_iterator.ok_or_else(|| {
            StreamError::new(
                StreamErrorKind::Fatal,
                format!("kinesis GetShardIterator on shard '{shard}' answered without an iterator"),
            )
        })
    }

    /// Records from an iterator.
    pub async fn get_records(
        &self,
        iterator: &str,
        limit: u32,
        timeout: Duration,
    ) -> Result<Records, StreamError> {
        let body =
            json!({ "ShardIterator": iterator, "Limit": limit.clamp(1, MAX_RECORDS_PER_CALL) });
        self.call("GetRecords", &body, timeout).await
    }

    /// Creates a stream (tests and tools).
    pub async fn create_stream(
        &self,
        stream: &str,
        shards: u32,
        timeout: Duration,
    ) -> Result<(), StreamError> {
        let body = json!({ "StreamName": stream, "ShardCount": shards });
        let _: Value = self
            .call_allow_empty("CreateStream", &body, timeout)
            .await?;
        Ok(())
    }

    /// The stream's status (`CREATING`, `ACTIVE`, `UPDATING`, `DELETING`).
    pub async fn stream_status(
        &self,
        stream: &str,
        timeout: Duration,
    ) -> Result<String, StreamError> {
        let v: Value = self
            .call(
                "DescribeStreamSummary",
                &json!({ "StreamName": stream }),
                timeout,
            )
            .await?;
        Ok(v["StreamDescriptionSummary"]["StreamStatus"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// Writes records (partition key, payload) in order, to the shard of `explicit_hash_key`
    /// when given; returns their shards and sequence numbers. Fails if any record was
    /// refused.
    pub async fn put_records(
        &self,
        stream: &str,
        records: &[(String, Vec<u8>)],
        explicit_hash_key: Option<&str>,
        timeout: Duration,
    ) -> Result<Vec<(String, String)>, StreamError> {
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Entry<'a> {
            data: String,
            partition_key: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            explicit_hash_key: Option<&'a str>,
        }
        let entries: Vec<Entry<'_>> = records
            .iter()
            .map(|(k, v)| Entry {
                data: base64::engine::general_purpose::STANDARD.encode(v),
                partition_key: k,
                explicit_hash_key,
            })
            .collect();
        let v: Value = self
            .call(
                "PutRecords",
                &json!({ "StreamName": stream, "Records": entries }),
                timeout,
            )
            .await?;
        let mut out = Vec::new();
        for r in v["Records"].as_array().into_iter().flatten() {
            match (r["SequenceNumber"].as_str(), r["ShardId"].as_str()) {
                (Some(s), Some(shard)) => out.push((shard.to_string(), s.to_string())),
                _ => {
                    return Err(StreamError::new(
                        StreamErrorKind::Transient,
                        format!("kinesis PutRecords refused a record: {r}"),
                    ))
                }
            }
        }
        Ok(out)
    }

    /// Splits a shard at a hash key (tests and tools).
    pub async fn split_shard(
        &self,
        stream: &str,
        shard: &str,
        new_starting_hash_key: &str,
        timeout: Duration,
    ) -> Result<(), StreamError> {
        let body = json!({
            "StreamName": stream,
            "ShardToSplit": shard,
            "NewStartingHashKey": new_starting_hash_key,
        });
        let _: Value = self.call_allow_empty("SplitShard", &body, timeout).await?;
        Ok(())
    }

    /// Merges two adjacent shards (tests and tools).
    pub async fn merge_shards(
        &self,
        stream: &str,
        shard: &str,
        adjacent: &str,
        timeout: Duration,
    ) -> Result<(), StreamError> {
        let body = json!({
            "StreamName": stream,
            "ShardToMerge": shard,
            "AdjacentShardToMerge": adjacent,
        });
        let _: Value = self.call_allow_empty("MergeShards", &body, timeout).await?;
        Ok(())
    }

    /// A call whose success may have an empty body.
    async fn call_allow_empty(
        &self,
        op: &str,
        body: &Value,
        timeout: Duration,
    ) -> Result<Value, StreamError> {
        match self.call::<Value>(op, body, timeout).await {
            Err(e) if e.kind == StreamErrorKind::Fatal && e.message.contains("unexpected body") => {
                Ok(Value::Null)
            }
            r => r,
        }
    }
}

/// The largest answer read from the endpoint. A `GetRecords` answer holds at most 10 MiB
/// of record data (about 13.4 MiB as base64 in JSON); an endpoint that sends more is not
/// Kinesis, and is not read into memory.
pub const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// The body of `resp`, refused once it passes `max` bytes (by its `Content-Length` before
/// reading, or as it arrives).
async fn read_capped(
    op: &str,
    mut resp: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, StreamError> {
    let too_big = |what: String| {
        StreamError::new(
            StreamErrorKind::Fatal,
            format!(
                "kinesis {op}: the endpoint's answer {what}, over the limit of {max} bytes; \
                 is the endpoint a Kinesis API?"
            ),
        )
    };
    if let Some(len) = resp.content_length() {
        if len > max as u64 {
            return Err(too_big(format!("declares {len} bytes")));
        }
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| transport(op, e))? {
        if out.len() + chunk.len() > max {
            return Err(too_big(format!("passed {} bytes", out.len() + chunk.len())));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// A transport failure (no answer) as a stream error, with its causes but not the URL (the
/// configured endpoint, named elsewhere).
fn transport(op: &str, e: reqwest::Error) -> StreamError {
    let kind = if e.is_timeout() {
        StreamErrorKind::Timeout
    } else {
        StreamErrorKind::Transient
    };
    let e = e.without_url();
    let mut text = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(cause) = src {
        text.push_str(&format!(": {cause}"));
        src = cause.source();
    }
    StreamError::new(kind, format!("kinesis {op} failed: {text}"))
}

/// The exception name of an error body: `__type` without its namespace.
pub fn exception_name(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let t = v.get("__type")?.as_str()?;
    Some(t.rsplit('#').next().unwrap_or(t).to_string())
}

/// The kind of an API exception.
pub fn classify(exception: &str, status: u16) -> StreamErrorKind {
    match exception {
        "ResourceNotFoundException" => StreamErrorKind::NotFound,
        "ProvisionedThroughputExceededException"
        | "LimitExceededException"
        | "ResourceInUseException"
        | "KMSThrottlingException"
        | "InternalFailure"
        | "InternalFailureException"
        | "ServiceUnavailable"
        | "ServiceUnavailableException"
        | "ThrottlingException" => StreamErrorKind::Transient,
        "ExpiredIteratorException" => StreamErrorKind::Transient,
        "AccessDeniedException"
        | "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "IncompleteSignature"
        | "IncompleteSignatureException"
        | "MissingAuthenticationToken"
        | "MissingAuthenticationTokenException"
        | "ExpiredTokenException"
        | "KMSAccessDeniedException"
        | "SignatureDoesNotMatch" => StreamErrorKind::Unauthorized,
        "InvalidArgumentException" | "ValidationException" => StreamErrorKind::InvalidConfig,
        _ if status >= 500 || status == 429 => StreamErrorKind::Transient,
        _ if status == 401 || status == 403 => StreamErrorKind::Unauthorized,
        _ => StreamErrorKind::Fatal,
    }
}

/// An error answer as a stream error naming the exception and its message.
fn api_error(op: &str, status: u16, body: &[u8]) -> StreamError {
    let name = exception_name(body).unwrap_or_else(|| format!("http {status}"));
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .or_else(|| v.get("Message"))
                .and_then(|m| m.as_str().map(str::to_string))
        })
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    let kind = classify(&name, status);
    StreamError::new(kind, format!("kinesis {op} failed: {name}: {message}"))
}

/// The API exception named in a stream error made by this client, if any.
pub fn is_exception(e: &StreamError, name: &str) -> bool {
    e.message.contains(&format!(": {name}: "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-connection HTTP server on loopback that answers any request with `head` and then
    /// `body_bytes` bytes of `x` (chunked when `head` says so).
    fn answering(head: &'static str, body_bytes: usize, chunked: bool) -> String {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            let Ok((mut c, _)) = l.accept() else { return };
            let mut buf = [0u8; 65536];
            let _ = c.read(&mut buf);
            let _ = c.write_all(head.as_bytes());
            let chunk = vec![b'x'; 1 << 20];
            let mut left = body_bytes;
            while left > 0 {
                let n = left.min(chunk.len());
                let ok = if chunked {
                    c.write_all(format!("{n:x}\r\n").as_bytes()).is_ok()
                        && c.write_all(&chunk[..n]).is_ok()
                        && c.write_all(b"\r\n").is_ok()
                } else {
                    c.write_all(&chunk[..n]).is_ok()
                };
                if !ok {
                    return;
                }
                left -= n;
            }
            if chunked {
                let _ = c.write_all(b"0\r\n\r\n");
            }
        });
        format!("http://{addr}")
    }

    fn client(endpoint: &str) -> KinesisClient {
        let creds = Credentials {
            access_key: "a".into(),
            secret_key: "b".into(),
            session_token: None,
        };
        KinesisClient::new("us-east-1", Some(endpoint), creds, Duration::from_secs(5)).unwrap()
    }

    #[tokio::test]
    async fn test_an_oversized_answer_is_refused_not_read() {
        // Declared too big: refused before reading.
        let url = answering(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000000000\r\n\r\n",
            1 << 20,
            false,
        );
        let e = client(&url)
            .call::<Value>("GetRecords", &json!({}), Duration::from_secs(10))
            .await
            .unwrap_err();
        assert_eq!(e.kind, StreamErrorKind::Fatal);
        assert!(
            e.message.contains("declares 1000000000 bytes")
                && e.message.contains(&MAX_RESPONSE_BYTES.to_string()),
            "{}",
            e.message
        );
        // No length, more than the limit as it arrives: refused once past it.
        let url = answering(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
            MAX_RESPONSE_BYTES + (2 << 20),
            true,
        );
        let e = client(&url)
            .call::<Value>("GetRecords", &json!({}), Duration::from_secs(30))
            .await
            .unwrap_err();
        assert_eq!(e.kind, StreamErrorKind::Fatal);
        assert!(e.message.contains("passed"), "{}", e.message);
        // An answer within the limit is read whole.
        let url = answering(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 13\r\n\r\n{\"Records\":1}",
            0,
            false,
        );
        let v: Value = client(&url)
            .call("GetRecords", &json!({}), Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(v, json!({"Records": 1}));
    }

    #[test]
    fn test_error_bodies_are_classified() {
        let body = br#"{"__type":"com.amazonaws.kinesis#ResourceNotFoundException","message":"Stream s not found"}"#;
        let e = api_error("ListShards", 400, body);
        assert_eq!(e.kind, StreamErrorKind::NotFound);
        assert_eq!(
            e.message,
            "kinesis ListShards failed: ResourceNotFoundException: Stream s not found"
        );
        assert!(is_exception(&e, "ResourceNotFoundException"));
        let e = api_error(
            "GetRecords",
            400,
            br#"{"__type":"ProvisionedThroughputExceededException","message":"slow down"}"#,
        );
        assert!(e.is_retryable());
        let e = api_error(
            "GetRecords",
            400,
            br#"{"__type":"UnrecognizedClientException"}"#,
        );
        assert_eq!(e.kind, StreamErrorKind::Unauthorized);
        let e = api_error("GetRecords", 503, b"<html>busy</html>");
        assert_eq!(e.kind, StreamErrorKind::Transient);
        assert!(e.message.contains("http 503"), "{}", e.message);
        let e = api_error("GetRecords", 400, b"garbage");
        assert_eq!(e.kind, StreamErrorKind::Fatal);
    }

    #[test]
    fn test_bad_endpoints_are_config_errors() {
        let creds = Credentials {
            access_key: "a".into(),
            secret_key: "b".into(),
            session_token: None,
        };
        for bad in ["not a url", "ftp://x", "file:///tmp"] {
            let e = KinesisClient::new(
                "us-east-1",
                Some(bad),
                creds.clone(),
                Duration::from_secs(1),
            )
            .unwrap_err();
            assert_eq!(e.kind, StreamErrorKind::InvalidConfig, "{bad}: {e}");
            assert!(e.message.contains(bad), "{e}");
        }
        let c = KinesisClient::new("eu-west-1", None, creds, Duration::from_secs(1)).unwrap();
        assert_eq!(c.endpoint(), "https://kinesis.eu-west-1.amazonaws.com/");
    }

    #[test]
    fn test_records_decode() {
        let r: Records = serde_json::from_str(
            r#"{"Records":[{"SequenceNumber":"4959","ApproximateArrivalTimestamp":1700000000.123,"Data":"aGk=","PartitionKey":"k"}],"NextShardIterator":null,"MillisBehindLatest":0}"#,
        )
        .unwrap();
        assert_eq!(r.records[0].payload().unwrap(), b"hi");
        assert_eq!(r.records[0].arrival_ms(), Some(1_700_000_000_123));
        assert!(r.next_shard_iterator.is_none());
        let bad = Record {
            sequence_number: "1".into(),
            approximate_arrival_timestamp: None,
            data: "!!".into(),
            partition_key: None,
        };
        assert!(bad.payload().unwrap_err().message.contains("record 1"));
    }
}
