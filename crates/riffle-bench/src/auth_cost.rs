//! What access control costs a query over HTTP: the same broker routes over the same
//! engine, served twice on loopback, once open and once with Pinot's basic auth on (a
//! principal with a table list, so every query is also checked table by table), queried
//! alternately through one keep-alive connection each.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use riffle_node::{AuthConfig, HttpConfig, Node};
use riffle_server::Services;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::queries::Latencies;
use crate::*;

/// The principal the auth side checks (Basic `bench:bench-password`).
const AUTH_PROPS: &str = "pinot.broker.access.control.principals=bench\n\
    pinot.broker.access.control.principals.bench.password=bench-password\n\
    pinot.broker.access.control.principals.bench.permissions=READ\n\
    pinot.broker.access.control.principals.bench.tables=bench_events\n";
/// `Basic base64("bench:bench-password")`.
const AUTH_HEADER: &str = "Basic YmVuY2g6YmVuY2gtcGFzc3dvcmQ=";

/// One query's latencies with auth off and on.
#[derive(Clone, Debug, Default)]
pub struct AuthCost {
    /// Open broker.
    pub open: Latencies,
    /// Broker with basic auth.
    pub auth: Latencies,
}

/// A keep-alive HTTP/1.1 connection to a broker.
pub(crate) struct Client {
    conn: BufReader<TcpStream>,
    auth: Option<&'static str>,
}

impl Client {
    pub(crate) async fn connect(
        addr: SocketAddr,
        auth: Option<&'static str>,
    ) -> Result<Client, BenchError> {
        let s = TcpStream::connect(addr)
            .await
            .map_err(|e| err(format!("connect {addr}: {e}")))?;
        let _ = s.set_nodelay(true);
        Ok(Client {
            conn: BufReader::new(s),
            auth,
        })
    }

    /// Sends a query and reads the whole answer; an answer with exceptions is an error.
    async fn query(&mut self, sql: &str) -> Result<Duration, BenchError> {
        self.query_answer(sql).await.map(|(took, _)| took)
    }

    /// Sends a query; the time to its whole answer, and the answer.
    pub(crate) async fn query_answer(
        &mut self,
        sql: &str,
    ) -> Result<(Duration, serde_json::Value), BenchError> {
        let body = serde_json::json!({ "sql": sql }).to_string();
        let auth = self
            .auth
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "POST /query/sql HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n\
             {auth}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let io = |e: std::io::Error| err(format!("http: {e}"));
        let t = Instant::now();
        self.conn
            .get_mut()
            .write_all(req.as_bytes())
            .await
            .map_err(io)?;
        let mut line = String::new();
        let mut length = 0usize;
        let mut status = String::new();
        loop {
            line.clear();
            if self.conn.read_line(&mut line).await.map_err(io)? == 0 {
                return Err(err("http: connection closed"));
            }
            let l = line.trim_end();
            if status.is_empty() {
                status = l.to_string();
            } else if l.is_empty() {
                break;
            } else if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().map_err(|_| err("http: bad length"))?;
                }
            }
        }
        let mut buf = vec![0u8; length];
        self.conn.read_exact(&mut buf).await.map_err(io)?;
        let took = t.elapsed();
        let v: serde_json::Value =
            serde_json::from_slice(&buf).map_err(|e| err(format!("http body: {e}")))?;
        if !status.contains(" 200 ") || v["exceptions"].as_array().is_none_or(|e| !e.is_empty()) {
            return Err(err(format!("{sql}: {status} {v}")));
        }
        Ok((took, v))
    }
}

/// A broker's HTTP routes over `node`, served on a loopback port until `cancel`.
pub(crate) async fn broker(
    node: &Node,
    auth: AuthConfig,
    cancel: &CancellationToken,
) -> Result<SocketAddr, BenchError> {
    let services = Arc::new(Services {
        tables: node.tables().clone(),
        query: node.query().clone(),
        segments: node.segments().clone(),
        server_name: "bench".into(),
        auth,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| err(format!("bind: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| err(format!("bind: {e}")))?;
    tokio::spawn(riffle_server::serve(
        listener,
        riffle_server::broker::routes(services),
        cancel.clone(),
        "broker",
        HttpConfig::default(),
    ));
    Ok(addr)
}

/// Runs each of `queries` `repeat` times on both brokers, alternating which goes first.
pub async fn measure(
    node: &Node,
    queries: &[&str],
    repeat: usize,
) -> Result<Vec<AuthCost>, BenchError> {
    let cancel = CancellationToken::new();
    let auth = AuthConfig::parse(AUTH_PROPS).map_err(err)?;
    let mut open =
        Client::connect(broker(node, AuthConfig::default(), &cancel).await?, None).await?;
    let mut closed = Client::connect(broker(node, auth, &cancel).await?, Some(AUTH_HEADER)).await?;
    let mut out = Vec::new();
    for sql in queries {
        let mut c = AuthCost::default();
        for i in 0..repeat {
            if i % 2 == 0 {
                c.open.0.push(open.query(sql).await?);
                c.auth.0.push(closed.query(sql).await?);
            } else {
                c.auth.0.push(closed.query(sql).await?);
                c.open.0.push(open.query(sql).await?);
            }
        }
        out.push(c);
    }
    cancel.cancel();
    Ok(out)
}
