//! A segment-fetcher plugin (the example crate, `riffle-fetcher-example`) registered with a
//! node serves pushes of its own URI scheme: a segment made by `/ingestFromFile`, downloaded
//! as a tar, deleted, then pushed again by a `vault://` URI comes back with its rows; a
//! scheme no fetcher serves, and a path that leaves the volume, are refused with 400.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use riffle_fetcher_example::VolumeFetcher;
use riffle_node::{default_streams, Node, NodeConfig};
use serde_json::{json, Value};

async fn count(node: &Node) -> i64 {
    let v: Value = reqwest::Client::new()
        .post(format!("http://{}/query/sql", node.broker_addr))
        .json(&json!({ "sql": "SELECT COUNT(*) FROM people" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["resultTable"]["rows"][0][0].as_i64().unwrap()
}

async fn push_uri(c: &str, uri: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{c}/v2/segments?tableName=people"))
        .header("UPLOAD_TYPE", "URI")
        .header("DOWNLOAD_URI", uri)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_fetcher_serves_its_scheme() {
    let tmp = tempfile::tempdir().unwrap();
    let vault = tmp.path().join("vault");
    std::fs::create_dir_all(&vault).unwrap();
    let mut config = NodeConfig::loopback(tmp.path().join("data"));
    config.fetchers = vec![Arc::new(VolumeFetcher::new("vault", &vault))];
    let node = Node::open(config, default_streams()).await.unwrap();
    let c = format!("http://{}", node.controller_addr);
    let http = reqwest::Client::new();
    let schema = json!({"schemaName": "people",
        "dimensionFieldSpecs": [{"name": "id", "dataType": "INT"}, {"name": "name", "dataType": "STRING"}]});
    let table = json!({"tableName": "people", "tableType": "OFFLINE", "segmentsConfig": {},
        "tenants": {}, "tableIndexConfig": {}, "metadata": {}});
    for (path, body) in [("schemas", schema), ("tables", table)] {
        let r = http
            .post(format!("{c}/{path}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "{path}: {}",
            r.text().await.unwrap()
        );
    }
    let rows = "{\"id\":1,\"name\":\"a\"}\n{\"id\":2,\"name\":\"b\"}\n{\"id\":3,\"name\":\"c\"}\n";
    let r: Value = http
        .post(format!(
            "{c}/ingestFromFile?tableNameWithType=people_OFFLINE&batchConfigMapStr=%7B%22inputFormat%22%3A%22json%22%7D"
        ))
        .body(rows)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let status = r["status"].as_str().unwrap();
    let segment = status.rsplit(' ').next().unwrap().to_string();
    assert_eq!(count(&node).await, 3);

    let tar = http
        .get(format!("{c}/segments/people/{segment}"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    std::fs::write(vault.join("seg.tar.gz"), &tar).unwrap();
    let r = http
        .delete(format!("{c}/segments/people/{segment}"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(count(&node).await, 0);

    let (status, body) = push_uri(&c, "vault://seg.tar.gz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(count(&node).await, 3);

    std::fs::write(tmp.path().join("outside.tar.gz"), &tar).unwrap();
    for uri in ["vault://../outside.tar.gz", "nosuch://seg.tar.gz"] {
        let (status, body) = push_uri(&c, uri).await;
        assert_eq!(status, 400, "{uri}: {body}");
    }
    assert_eq!(count(&node).await, 3);
    node.shutdown().await;
}
