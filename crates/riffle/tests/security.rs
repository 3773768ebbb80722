//! Hostile requests against a running server: names that would be paths, stream paths out
//! of the data directory, queries built to crash or exhaust it. Each is refused with an
//! error naming what is wrong, nothing outside the data directory changes, and the server
//! keeps answering.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// Every file below `dir` with its contents, to compare before and after.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.push((p.display().to_string(), Vec::new()));
                stack.push(p);
            } else {
                out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

async fn delete(url: &str) -> (u16, Value) {
    let r = reqwest::Client::new().delete(url).send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn schema_named(name: &str) -> Value {
    let mut s = read_json("examples/transcript/transcript_schema.json");
    s["schemaName"] = json!(name);
    s
}

fn table_named(name: &str) -> Value {
    let mut t = read_json("examples/transcript/transcript_file_table_config.json");
    t["tableName"] = json!(name);
    t["segmentsConfig"]["schemaName"] = json!(name);
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_that_would_be_paths_are_refused_and_nothing_outside_changes() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    // A canary where a table named by an absolute path would keep its files.
    let outside = root.path().join("outside");
    let victim = outside.join("victim_REALTIME");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("canary.txt"), b"keep me").unwrap();
    std::fs::write(outside.join("victim"), b"keep me too").unwrap();
    let before = snapshot(&outside);

    let server = start(&data).await;
    let c = format!("http://{}", server.controller_addr);
    let absolute = outside.join("victim").display().to_string();
    let long = "a".repeat(300);
    for name in [
        absolute.as_str(),
        "../victim",
        "../../outside/victim",
        "a/b",
        "a\\b",
        "x\u{0}y",
        "x\u{1b}[31my",
        "two__parts",
        long.as_str(),
        "",
    ] {
        let (s, v) = post(&format!("{c}/schemas"), &schema_named(name)).await;
        assert_eq!(s, 400, "schema {name:?}: {v}");
        let text = v.to_string();
        assert!(text.contains("name"), "schema {name:?}: {text}");
        let (s, v) = post(&format!("{c}/tables"), &table_named(name)).await;
        assert_eq!(s, 400, "table {name:?}: {v}");
    }
    // Through the URL: an encoded path in place of a table name.
    for path in [
        format!("/tables/{}", urlencode(&absolute)),
        "/tables/..%2F..%2Foutside%2Fvictim".to_string(),
        format!("/schemas/{}", urlencode(&absolute)),
        "/tables/%2E%2E".to_string(),
    ] {
        let (s, v) = delete(&format!("{c}{path}")).await;
        assert!(s == 400 || s == 404, "DELETE {path}: {s} {v}");
        let (s, v) = get(&format!("{c}{path}")).await;
        assert!(s == 400 || s == 404, "GET {path}: {s} {v}");
    }
    assert_eq!(
        snapshot(&outside),
        before,
        "files outside the data directory changed"
    );
    // The server is still serving: a good table can be made and read.
    let (s, v) = post(&format!("{c}/schemas"), &schema_named("fine")).await;
    assert_eq!(s, 200, "{v}");
    server.shutdown().await;
    assert_eq!(snapshot(&outside), before);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_stream_paths_outside_the_data_directory_are_refused_unless_allowed() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let outside = root.path().join("outside");
    std::fs::create_dir_all(outside.join("secret-topic")).unwrap();
    std::fs::write(
        outside.join("secret-topic").join("0.jsonl"),
        transcript_rows().join("\n") + "\n",
    )
    .unwrap();

    let server = start(&data).await;
    let c = format!("http://{}", server.controller_addr);
    let (s, v) = post(&format!("{c}/schemas"), &schema_named("transcript")).await;
    assert_eq!(s, 200, "{v}");
    for path in [
        outside.display().to_string(),
        "/proc/self/fd".to_string(),
        "../outside".to_string(),
    ] {
        let mut t = table_named("transcript");
        let streams = &mut t["tableIndexConfig"]["streamConfigs"];
        streams["stream.file.path"] = json!(path);
        streams["stream.file.topic.name"] = json!("secret-topic");
        let (s, v) = post(&format!("{c}/tables"), &t).await;
        assert_eq!(s, 400, "{path}: {v}");
        assert!(v.to_string().contains("stream.file.path"), "{path}: {v}");
        let (s, _) = get(&format!("{c}/tables/transcript")).await;
        assert_eq!(s, 404, "{path}: the table must not exist");
    }
    server.shutdown().await;

    // Started with --allow-stream-path for that directory, the same table reads it.
    let server = start_configured(&data, false, |c| {
        c.allowed_stream_dirs = vec![outside.clone()]
    })
    .await;
    let c = format!("http://{}", server.controller_addr);
    let mut t = table_named("transcript");
    let streams = &mut t["tableIndexConfig"]["streamConfigs"];
    streams["stream.file.path"] = json!(outside.display().to_string());
    streams["stream.file.topic.name"] = json!("secret-topic");
    let (s, v) = post(&format!("{c}/tables"), &t).await;
    assert_eq!(s, 200, "{v}");
    wait_count(&server, "transcript", 12, Duration::from_secs(20)).await;
    server.shutdown().await;
}

async fn query(server: &riffle_node::Node, sql: &str) -> Value {
    let (status, v) = post(
        &format!("http://{}/query/sql", server.broker_addr),
        &json!({ "sql": sql }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_queries_fail_with_their_limit_and_the_server_keeps_answering() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_configured(dir.path(), false, |c| {
        c.query_limits.max_result_rows = 1_000;
    })
    .await;
    let c = format!("http://{}", server.controller_addr);
    append(
        dir.path(),
        "transcript-topic",
        "0.jsonl",
        &transcript_rows(),
    );
    let (s, v) = post(&format!("{c}/schemas"), &schema_named("transcript")).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = post(&format!("{c}/tables"), &table_named("transcript")).await;
    assert_eq!(s, 200, "{v}");
    wait_count(&server, "transcript", 12, Duration::from_secs(20)).await;

    let ors = (0..2_000)
        .map(|i| format!("studentID = {i}"))
        .collect::<Vec<_>>()
        .join(" OR ");
    let pluses = (0..2_000)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(" + ");
    let cases = [
        (
            format!("SELECT COUNT(*) FROM transcript WHERE {ors}"),
            150,
            "maxExpressionDepth",
        ),
        (
            format!("SELECT {pluses} FROM transcript"),
            150,
            "maxExpressionDepth",
        ),
        (
            "SELECT MAX(length(repeat(firstName, 1000000000))) FROM transcript".to_string(),
            245,
            "maxStringBytes",
        ),
        (
            "SELECT a.studentID FROM transcript a, transcript b, transcript c LIMIT 100000000"
                .to_string(),
            245,
            "maxResultRows",
        ),
    ];
    // Each hostile query while another client counts: the count keeps answering.
    for (sql, code, limit) in &cases {
        let (hostile, light) = tokio::join!(query(&server, sql), async {
            count(&server, "transcript").await
        });
        assert_eq!(hostile["exceptions"][0]["errorCode"], *code, "{hostile}");
        let message = hostile["exceptions"][0]["message"].as_str().unwrap();
        assert!(message.contains(limit), "{message}");
        assert_eq!(light, 12);
    }
    assert_eq!(count(&server, "transcript").await, 12);
    let (s, _) = get(&format!("{c}/health")).await;
    assert_eq!(s, 200);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_table_update_leaves_the_table_running_on_its_previous_config() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let c = format!("http://{}", server.controller_addr);
    let rows = transcript_rows();
    append(dir.path(), "transcript-topic", "0.jsonl", &rows[..6]);
    let (s, v) = post(&format!("{c}/schemas"), &schema_named("transcript")).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = post(&format!("{c}/tables"), &table_named("transcript")).await;
    assert_eq!(s, 200, "{v}");
    wait_count(&server, "transcript", 6, Duration::from_secs(20)).await;

    // The new config validates as a table config but its stream cannot be read from here.
    let mut t = table_named("transcript");
    t["tableIndexConfig"]["streamConfigs"]["stream.file.path"] = json!("/proc/self");
    let r = reqwest::Client::new()
        .put(format!("{c}/tables/transcript"))
        .json(&t)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("stream.file.path"), "{body}");

    // The stored config is the previous one and the table keeps consuming.
    let (s, v) = get(&format!("{c}/tables/transcript")).await;
    assert_eq!(s, 200, "{v}");
    let streams = &v["REALTIME"]["tableIndexConfig"]["streamConfigs"];
    assert!(streams.get("stream.file.path").is_none(), "{v}");
    append(dir.path(), "transcript-topic", "0.jsonl", &rows[6..]);
    wait_count(&server, "transcript", 12, Duration::from_secs(20)).await;
    server.shutdown().await;
}

async fn preflight(url: &str, origin: &str) -> Option<String> {
    let r = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, url)
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "DELETE")
        .send()
        .await
        .unwrap();
    r.headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap_or_default().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_is_off_unless_origins_are_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let url = format!("http://{}/tables/t", server.controller_addr);
    assert_eq!(preflight(&url, "http://evil.example").await, None);
    server.shutdown().await;

    let server = start_configured(dir.path(), false, |c| {
        c.http.cors_origins = vec!["http://dash.example".into()];
    })
    .await;
    let url = format!("http://{}/tables/t", server.controller_addr);
    assert_eq!(
        preflight(&url, "http://dash.example").await.as_deref(),
        Some("http://dash.example")
    );
    assert_eq!(preflight(&url, "http://evil.example").await, None);
    server.shutdown().await;
}

/// Reads from `s` until the server closes it (or `limit` passes: then `false`).
async fn closed_within(s: &mut tokio::net::TcpStream, limit: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_are_closed_and_bounded() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let server = start_configured(dir.path(), false, |c| {
        c.http.header_read_timeout = Duration::from_millis(500);
        c.http.max_connections = 3;
    })
    .await;
    let addr = server.broker_addr;
    // Three clients that never finish their headers hold every slot.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"POST /query/sql HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A fourth connection is closed at once.
    let mut extra = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(closed_within(&mut extra, Duration::from_secs(2)).await);
    // The held ones are closed at the header timeout, not kept forever.
    for s in &mut held {
        assert!(closed_within(s, Duration::from_secs(10)).await);
    }
    // Then the server answers again.
    let (s, _) = get(&format!("http://{addr}/health")).await;
    assert_eq!(s, 200);
    server.shutdown().await;
}

async fn call(
    method: reqwest::Method,
    url: &str,
    auth: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut r = reqwest::Client::new().request(method, url);
    if let Some(a) = auth {
        r = r.header("Authorization", a);
    }
    if let Some(b) = body {
        r = r.json(b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auth_on_writes_need_credentials_and_users_see_only_their_tables() {
    let dir = tempfile::tempdir().unwrap();
    let auth = riffle_node::AuthConfig::parse(
        "controller.admin.access.control.principals=admin,user\n\
         controller.admin.access.control.principals.admin.password=verysecret\n\
         controller.admin.access.control.principals.user.password=secret\n\
         controller.admin.access.control.principals.user.permissions=READ\n\
         controller.admin.access.control.principals.user.tables=transcript\n",
    )
    .unwrap();
    let server = start_configured(dir.path(), false, |c| c.auth = auth).await;
    let c = format!("http://{}", server.controller_addr);
    let b = format!("http://{}", server.broker_addr);
    let admin = basic("admin", "verysecret");
    let user = basic("user", "secret");
    append(
        dir.path(),
        "transcript-topic",
        "0.jsonl",
        &transcript_rows(),
    );

    // No credentials, wrong ones: 401; a read-only user writing: 403.
    let (s, _) = call(
        reqwest::Method::POST,
        &format!("{c}/schemas"),
        None,
        Some(&schema_named("transcript")),
    )
    .await;
    assert_eq!(s, 401);
    let (s, _) = call(
        reqwest::Method::POST,
        &format!("{c}/schemas"),
        Some(&basic("admin", "nope")),
        Some(&schema_named("transcript")),
    )
    .await;
    assert_eq!(s, 401);
    let (s, v) = call(
        reqwest::Method::POST,
        &format!("{c}/schemas"),
        Some(&user),
        Some(&schema_named("transcript")),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    for name in ["transcript", "secret"] {
        let (s, v) = call(
            reqwest::Method::POST,
            &format!("{c}/schemas"),
            Some(&admin),
            Some(&schema_named(name)),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        let (s, v) = call(
            reqwest::Method::POST,
            &format!("{c}/tables"),
            Some(&admin),
            Some(&table_named(name)),
        )
        .await;
        assert_eq!(s, 200, "{v}");
    }
    let (s, _) = get(&format!("{c}/health")).await;
    assert_eq!(s, 200);
    let (s, _) = call(
        reqwest::Method::GET,
        &format!("{c}/tables/transcript"),
        Some(&user),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(
        reqwest::Method::GET,
        &format!("{c}/tables/secret"),
        Some(&user),
        None,
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = call(
        reqwest::Method::DELETE,
        &format!("{c}/tables/transcript"),
        Some(&user),
        None,
    )
    .await;
    assert_eq!(s, 403);

    // Queries: credentials required; the user reads its table, not the other.
    let q = |t: &str| json!({ "sql": format!("SELECT COUNT(*) FROM {t}") });
    let (s, _) = call(
        reqwest::Method::POST,
        &format!("{b}/query/sql"),
        None,
        Some(&q("transcript")),
    )
    .await;
    assert_eq!(s, 401);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (s, v) = call(
            reqwest::Method::POST,
            &format!("{b}/query/sql"),
            Some(&user),
            Some(&q("transcript")),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        if v["resultTable"]["rows"][0][0] == 12 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, v) = call(
        reqwest::Method::POST,
        &format!("{b}/query/sql"),
        Some(&user),
        Some(&q("secret")),
    )
    .await;
    assert_eq!(v["exceptions"][0]["errorCode"], 180, "{v}");
    assert!(v.get("resultTable").is_none(), "{v}");
    let (_, v) = call(
        reqwest::Method::POST,
        &format!("{b}/query/sql"),
        Some(&admin),
        Some(&q("secret")),
    )
    .await;
    assert_eq!(v["exceptions"], json!([]), "{v}");
    // The controller's `/sql` answers within the same bounds.
    let (_, v) = call(
        reqwest::Method::POST,
        &format!("{c}/sql"),
        Some(&user),
        Some(&q("secret")),
    )
    .await;
    assert_eq!(v["exceptions"][0]["errorCode"], 180, "{v}");

    // Metrics: credentials required; a user sees only its tables.
    let (s, _) = call(reqwest::Method::GET, &format!("{c}/metrics"), None, None).await;
    assert_eq!(s, 401);
    for (who, sees_secret) in [(&user, false), (&admin, true)] {
        let (s, v) = call(
            reqwest::Method::GET,
            &format!("{c}/metrics"),
            Some(who),
            None,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        let m = v.as_str().unwrap();
        assert!(m.contains(r#"table="transcript_REALTIME""#), "{m}");
        assert_eq!(m.contains(r#"table="secret_REALTIME""#), sees_secret, "{m}");
    }
    server.shutdown().await;
}

/// The value of one `/metrics` sample (a line starting with `series`), if present.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn metrics_text(url: &str) -> String {
    let r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    r.text().await.unwrap()
}

/// A deep store whose bucket does not exist: the first segment's upload fails for good.
/// The partition shows ERROR with the commit stage at once, in `consumingSegmentsInfo` and
/// in `/metrics`, long before the segment's time limit; the rows stay queryable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_commit_failure_shows_at_once_in_consuming_info_and_metrics() {
    use riffle_storage::testing::S3Server;
    let s3 = S3Server::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = s3.options();
    let server = start_configured(dir.path(), false, move |c| {
        c.deep_store_uri = Some("s3://no-such-bucket/deep".into());
        c.deep_store_options = opts;
    })
    .await;
    let c = format!("http://{}", server.controller_addr);
    append(
        dir.path(),
        "transcript-topic",
        "0.jsonl",
        &transcript_rows(),
    );
    let (s, v) = post(&format!("{c}/schemas"), &schema_named("transcript")).await;
    assert_eq!(s, 200, "{v}");
    let mut t = table_named("transcript");
    // The segment ends after 5 rows (its time limit stays at an hour).
    t["tableIndexConfig"]["streamConfigs"]["realtime.segment.flush.threshold.rows"] = json!("5");
    let (s, v) = post(&format!("{c}/tables"), &t).await;
    assert_eq!(s, 200, "{v}");

    let started = std::time::Instant::now();
    let info = loop {
        let (s, v) = get(&format!("{c}/tables/transcript/consumingSegmentsInfo")).await;
        assert_eq!(s, 200, "{v}");
        let info = v["_segmentToConsumingInfoMap"]
            .as_object()
            .and_then(|m| m.values().next().cloned())
            .and_then(|list| list.get(0).cloned());
        if let Some(i) = info.filter(|i| i["riffleState"] == "ERROR") {
            break i;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the partition never showed the failure: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(info["consumerState"], "NOT_CONSUMING", "{info}");
    assert_eq!(info["riffleErrorStage"], "commit", "{info}");
    let message = info["riffleLastError"].as_str().unwrap();
    assert!(message.contains("no-such-bucket"), "{message}");

    let m = metrics_text(&format!("{c}/metrics")).await;
    let labels = r#"table="transcript_REALTIME",partition="0""#;
    assert_eq!(
        sample(
            &m,
            &format!("riffle_partition_state{{{labels},state=\"ERROR\"}}")
        ),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, &format!("riffle_partition_consuming{{{labels}}}")),
        Some(0.0),
        "{m}"
    );
    assert!(
        sample(
            &m,
            &format!(
                "riffle_partition_last_error_timestamp_seconds{{{labels},stage=\"commit\",retrying=\"false\"}}"
            )
        )
        .is_some_and(|t| t > 1.6e9),
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            &format!("riffle_partition_segments_committed_total{{{labels}}}")
        ),
        Some(0.0),
        "{m}"
    );
    // Nothing is lost: the rows read so far answer queries.
    assert!(count(&server, "transcript").await >= 5);
    server.shutdown().await;
}

/// `/metrics` on both ports: ingestion counters and lag per partition, segments per table,
/// queries with their errors by code and a latency histogram.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_ingestion_lag_tables_and_queries() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let c = format!("http://{}", server.controller_addr);
    append(
        dir.path(),
        "transcript-topic",
        "0.jsonl",
        &transcript_rows(),
    );
    let (s, v) = post(&format!("{c}/schemas"), &schema_named("transcript")).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = post(&format!("{c}/tables"), &table_named("transcript")).await;
    assert_eq!(s, 200, "{v}");
    wait_count(&server, "transcript", 12, Duration::from_secs(20)).await;
    let (s, v) = post(
        &format!("http://{}/query/sql", server.broker_addr),
        &json!({"sql": "SELECT nope FROM transcript"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");

    for url in [
        format!("{c}/metrics"),
        format!("http://{}/metrics", server.broker_addr),
    ] {
        let m = metrics_text(&url).await;
        let labels = r#"table="transcript_REALTIME",partition="0""#;
        assert_eq!(
            sample(
                &m,
                &format!("riffle_partition_state{{{labels},state=\"CONSUMING\"}}")
            ),
            Some(1.0),
            "{m}"
        );
        assert_eq!(
            sample(
                &m,
                &format!("riffle_partition_rows_indexed_total{{{labels}}}")
            ),
            Some(12.0),
            "{m}"
        );
        assert_eq!(
            sample(
                &m,
                &format!("riffle_partition_decode_errors_total{{{labels}}}")
            ),
            Some(0.0),
            "{m}"
        );
        assert!(
            sample(
                &m,
                &format!("riffle_partition_availability_lag_seconds{{{labels}}}")
            )
            .is_some(),
            "{m}"
        );
        assert_eq!(
            sample(
                &m,
                r#"riffle_table_rows{table="transcript_REALTIME",kind="consuming"}"#
            ),
            Some(12.0),
            "{m}"
        );
        // wait_count's queries and the failed one, each counted once.
        let queries = sample(&m, "riffle_queries_total").unwrap();
        assert!(queries >= 2.0, "{m}");
        assert_eq!(
            sample(&m, r#"riffle_query_errors_total{code="710"}"#),
            Some(1.0),
            "{m}"
        );
        assert_eq!(
            sample(&m, r#"riffle_query_duration_seconds_bucket{le="+Inf"}"#),
            Some(queries),
            "{m}"
        );
        assert_eq!(sample(&m, "riffle_queries_running"), Some(0.0), "{m}");
    }
    server.shutdown().await;
}

/// Bodies over their endpoint's limit are refused with 413 naming the limit, declared
/// (`Content-Length`) or not (chunked); the server keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_over_their_endpoint_limit_get_413() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let c = format!("http://{}", server.controller_addr);
    let b = format!("http://{}", server.broker_addr);
    let big_sql = json!({ "sql": format!("SELECT 1 -- {}", "x".repeat(5 << 20)) });
    for (url, body, limit) in [
        (format!("{b}/query/sql"), big_sql.clone(), 4 << 20),
        (format!("{c}/sql"), big_sql, 4 << 20),
        (
            format!("{c}/tables/t/pauseConsumption"),
            json!({ "pad": "x".repeat(100 << 10) }),
            64 << 10,
        ),
        (
            format!("{c}/schemas"),
            json!({ "schemaName": "x", "pad": "x".repeat(9 << 20) }),
            8 << 20,
        ),
    ] {
        let (s, v) = post(&url, &body).await;
        assert_eq!(s, 413, "{url}: {v}");
        let message = v["error"].as_str().unwrap();
        assert!(message.contains(&format!("{limit} bytes")), "{message}");
    }
    // A declared gigabyte: answered before a byte of it is sent.
    let mut conn = tokio::net::TcpStream::connect(server.broker_addr)
        .await
        .unwrap();
    conn.write_all(
        b"POST /query/sql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 1073741824\r\n\r\n",
    )
    .await
    .unwrap();
    let mut answer = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    drop(conn);
    // Chunked, without a declared length: cut off at the limit.
    let mut conn = tokio::net::TcpStream::connect(server.broker_addr)
        .await
        .unwrap();
    let head = "POST /query/sql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    conn.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 1 << 20, "x".repeat(1 << 20));
    for _ in 0..5 {
        if conn.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = conn.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("4194304 bytes"), "{answer}");
    let (s, _) = get(&format!("{c}/health")).await;
    assert_eq!(s, 200);
    server.shutdown().await;
}
