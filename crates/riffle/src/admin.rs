//! Pinot-style admin commands (`pinot-admin.sh` flags as written in Pinot's docs):
//! `AddTable`, `AddSchema`, `PostQuery`. Flags take one dash (`-schemaFile F`), two dashes
//! or `-flag=value`; names are case-insensitive.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

/// A parsed command line: flag values and boolean flags.
#[derive(Debug, Default)]
pub struct Flags {
    values: BTreeMap<String, String>,
    repeated: BTreeMap<String, Vec<String>>,
}

/// Parses Pinot-style flags. `booleans` take no value; every other flag needs one.
pub fn parse_flags(args: &[String], known: &[&str], booleans: &[&str]) -> Result<Flags> {
    let mut f = Flags::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let name = a.trim_start_matches('-');
        if !a.starts_with('-') || name.is_empty() {
            bail!("unexpected argument '{a}', flags start with '-'");
        }
        let (name, inline) = match name.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (name, None),
        };
        let canonical = known
            .iter()
            .chain(booleans.iter())
            .find(|k| k.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                anyhow!(
                    "unknown flag '-{name}', known flags: {}",
                    known
                        .iter()
                        .chain(booleans.iter())
                        .map(|k| format!("-{k}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?
            .to_string();
        if booleans.contains(&canonical.as_str()) {
            let v = inline.unwrap_or_else(|| "true".into());
            f.values.insert(canonical, v);
            i += 1;
            continue;
        }
        let v = match inline {
            Some(v) => v,
            None => {
                i += 1;
                args.get(i)
                    .cloned()
                    .ok_or_else(|| anyhow!("flag '-{canonical}' needs a value"))?
            }
        };
        f.repeated
            .entry(canonical.clone())
            .or_default()
            .push(v.clone());
        f.values.insert(canonical, v);
        i += 1;
    }
    Ok(f)
}

impl Flags {
    /// A flag's value.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.values.get(k).map(|s| s.as_str())
    }

    /// A boolean flag.
    pub fn is_set(&self, k: &str) -> bool {
        self.get(k)
            .is_some_and(|v| !v.eq_ignore_ascii_case("false"))
    }

    /// Every value of a repeatable flag.
    pub fn all(&self, k: &str) -> Vec<String> {
        self.repeated.get(k).cloned().unwrap_or_default()
    }

    /// The `Authorization` value `-authToken` (a full `Basic ...` / `Bearer ...` value, or
    /// Pinot's bare token) or `-user` / `-password` give, as Pinot's admin commands send it.
    pub fn authorization(&self) -> Result<Option<String>> {
        if let Some(t) = self.get("authToken") {
            let t = t.trim();
            let has_scheme = t.split_once(' ').is_some_and(|(s, _)| {
                s.eq_ignore_ascii_case("basic") || s.eq_ignore_ascii_case("bearer")
            });
            return Ok(Some(if has_scheme {
                t.to_string()
            } else {
                format!("Basic {t}")
            }));
        }
        match (self.get("user"), self.get("password")) {
            (Some(u), Some(p)) => {
                use base64::Engine;
                let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                Ok(Some(format!("Basic {token}")))
            }
            (Some(_), None) => bail!("-user needs -password"),
            (None, Some(_)) => bail!("-password needs -user"),
            (None, None) => Ok(None),
        }
    }

    /// An HTTP client that sends the credentials the flags give.
    fn client(&self) -> Result<reqwest::Client> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(a) = self.authorization()? {
            let mut v = reqwest::header::HeaderValue::from_str(&a)
                .map_err(|_| anyhow!("-authToken / -user / -password: not a valid header value"))?;
            v.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, v);
        }
        let mut builder = reqwest::Client::builder().default_headers(headers);
        // A private CA for an https server, as OpenSSL-based tools take it.
        if let Some(path) = std::env::var_os("SSL_CERT_FILE").filter(|p| !p.is_empty()) {
            let pem = std::fs::read(&path)
                .with_context(|| format!("SSL_CERT_FILE {}", Path::new(&path).display()))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem).with_context(|| {
                format!(
                    "SSL_CERT_FILE {}: not PEM certificates",
                    Path::new(&path).display()
                )
            })? {
                builder = builder.add_root_certificate(cert);
            }
        }
        builder.build().context("http client")
    }

    fn base_url(
        &self,
        host_key: &str,
        port_key: &str,
        proto_key: &str,
        default_port: u16,
    ) -> String {
        let host = self.get(host_key).unwrap_or("localhost");
        let port = self
            .get(port_key)
            .map(|p| p.to_string())
            .unwrap_or(default_port.to_string());
        let proto = self.get(proto_key).unwrap_or("http");
        format!("{proto}://{host}:{port}")
    }
}

fn read_json(path: &str) -> Result<Value> {
    let text = std::fs::read_to_string(Path::new(path)).with_context(|| format!("read {path}"))?;
    serde_json::from_str(&text).with_context(|| format!("{path} is not valid JSON"))
}

async fn send(req: reqwest::RequestBuilder, what: &str) -> Result<Value> {
    let resp = req
        .send()
        .await
        .with_context(|| format!("{what}: request failed"))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
    if !status.is_success() {
        let msg = body
            .get("error")
            .and_then(|e| e.as_str())
            .map(str::to_string)
            .unwrap_or(text);
        bail!("{what} failed with HTTP {}: {msg}", status.as_u16());
    }
    Ok(body)
}

const ADD_TABLE_HELP: &str = "\
usage: riffle AddTable -schemaFile <file> -tableConfigFile <file> [-controllerHost <host>]
                       [-controllerPort <port>] [-controllerProtocol http|https] [-update] -exec

Creates a table and its schema in one step (POST /tableConfigs), as pinot-admin.sh AddTable
does. -realtimeTableConfigFile / -offlineTableConfigFile may be given instead of (or beside)
-tableConfigFile. Without -exec the request is only printed. With -update the schema and
table configs are replaced.";

const ADD_SCHEMA_HELP: &str = "\
usage: riffle AddSchema -schemaFile <file> [-controllerHost <host>] [-controllerPort <port>]
                        [-controllerProtocol http|https] [-override] [-force] -exec

Adds a schema (POST /schemas). Without -exec the request is only printed.";

const POST_QUERY_HELP: &str = "\
usage: riffle PostQuery -query <sql> [-brokerHost <host>] [-brokerPort <port>]
                        [-brokerProtocol http|https] [-o key=value]...

Runs a query on the broker (POST /query/sql) and prints Pinot's JSON response. Each
-o key=value is added to the request body.";

/// `AddTable`.
pub async fn add_table(args: &[String]) -> Result<()> {
    let f = parse_flags(
        args,
        &[
            "schemaFile",
            "tableConfigFile",
            "realtimeTableConfigFile",
            "offlineTableConfigFile",
            "controllerHost",
            "controllerPort",
            "controllerProtocol",
            "validationTypesToSkip",
            "user",
            "password",
            "authToken",
        ],
        &["exec", "update", "help"],
    )?;
    if f.is_set("help") {
        println!("{ADD_TABLE_HELP}");
        return Ok(());
    }
    let schema = read_json(
        f.get("schemaFile")
            .ok_or_else(|| anyhow!("-schemaFile is required\n\n{ADD_TABLE_HELP}"))?,
    )?;
    let mut configs = Vec::new();
    for key in [
        "tableConfigFile",
        "realtimeTableConfigFile",
        "offlineTableConfigFile",
    ] {
        if let Some(p) = f.get(key) {
            configs.push(read_json(p)?);
        }
    }
    if configs.is_empty() {
        bail!("-tableConfigFile (or -realtimeTableConfigFile / -offlineTableConfigFile) is required\n\n{ADD_TABLE_HELP}");
    }
    let raw = schema
        .get("schemaName")
        .and_then(|s| s.as_str())
        .ok_or_else(|| anyhow!("schema file has no schemaName"))?
        .to_string();
    let mut body = json!({"tableName": raw, "schema": schema});
    for c in configs {
        let t = c
            .get("tableType")
            .and_then(|t| t.as_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        if t != "realtime" && t != "offline" {
            bail!("table config has no tableType REALTIME or OFFLINE");
        }
        body[t] = c;
    }
    let base = f.base_url(
        "controllerHost",
        "controllerPort",
        "controllerProtocol",
        9000,
    );
    if !f.is_set("exec") {
        println!(
            "dry run (add -exec to send): POST {base}/tableConfigs\n{}",
            serde_json::to_string_pretty(&body)?
        );
        return Ok(());
    }
    let client = f.client()?;
    if f.is_set("update") {
        send(
            client
                .put(format!("{base}/schemas/{raw}"))
                .json(&body["schema"]),
            "update schema",
        )
        .await?;
        for t in ["realtime", "offline"] {
            if body.get(t).is_some() {
                send(
                    client.put(format!("{base}/tables/{raw}")).json(&body[t]),
                    "update table",
                )
                .await?;
            }
        }
        println!("{{\"status\":\"TableConfigs {raw} successfully updated\"}}");
        return Ok(());
    }
    let resp = send(
        client.post(format!("{base}/tableConfigs")).json(&body),
        "add table",
    )
    .await?;
    println!("{resp}");
    Ok(())
}

/// `AddSchema`.
pub async fn add_schema(args: &[String]) -> Result<()> {
    let f = parse_flags(
        args,
        &[
            "schemaFile",
            "controllerHost",
            "controllerPort",
            "controllerProtocol",
            "user",
            "password",
            "authToken",
        ],
        &["exec", "override", "force", "help"],
    )?;
    if f.is_set("help") {
        println!("{ADD_SCHEMA_HELP}");
        return Ok(());
    }
    let schema = read_json(
        f.get("schemaFile")
            .ok_or_else(|| anyhow!("-schemaFile is required\n\n{ADD_SCHEMA_HELP}"))?,
    )?;
    let base = f.base_url(
        "controllerHost",
        "controllerPort",
        "controllerProtocol",
        9000,
    );
    let url = format!(
        "{base}/schemas?override={}&force={}",
        f.is_set("override") || !f.values.contains_key("override"),
        f.is_set("force")
    );
    if !f.is_set("exec") {
        println!(
            "dry run (add -exec to send): POST {url}\n{}",
            serde_json::to_string_pretty(&schema)?
        );
        return Ok(());
    }
    let resp = send(f.client()?.post(url).json(&schema), "add schema").await?;
    println!("{resp}");
    Ok(())
}

/// `PostQuery`.
pub async fn post_query(args: &[String]) -> Result<()> {
    let f = parse_flags(
        args,
        &[
            "query",
            "brokerHost",
            "brokerPort",
            "brokerProtocol",
            "o",
            "user",
            "password",
            "authToken",
        ],
        &["help"],
    )?;
    if f.is_set("help") {
        println!("{POST_QUERY_HELP}");
        return Ok(());
    }
    let sql = f
        .get("query")
        .ok_or_else(|| anyhow!("-query is required\n\n{POST_QUERY_HELP}"))?;
    let mut body = json!({"sql": sql});
    for kv in f.all("o") {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| anyhow!("-o expects key=value, got '{kv}'"))?;
        body[k] = Value::String(v.to_string());
    }
    let base = f.base_url("brokerHost", "brokerPort", "brokerProtocol", 8099);
    let resp = send(
        f.client()?.post(format!("{base}/query/sql")).json(&body),
        "query",
    )
    .await?;
    println!("{resp}");
    if let Some(ex) = resp
        .get("exceptions")
        .and_then(|e| e.as_array())
        .filter(|e| !e.is_empty())
    {
        bail!("query failed: {}", Value::Array(ex.clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn test_pinot_flags() {
        let f = parse_flags(
            &s(&[
                "-schemaFile",
                "a.json",
                "--controllerport=9001",
                "-exec",
                "-o",
                "a=1",
                "-o",
                "b=2",
            ]),
            &["schemaFile", "controllerPort", "o"],
            &["exec"],
        )
        .unwrap();
        assert_eq!(f.get("schemaFile"), Some("a.json"));
        assert_eq!(f.get("controllerPort"), Some("9001"));
        assert!(f.is_set("exec"));
        assert_eq!(f.all("o"), vec!["a=1", "b=2"]);
        let e = parse_flags(&s(&["-nope", "x"]), &["schemaFile"], &[]).unwrap_err();
        assert!(e.to_string().contains("-nope"), "{e}");
        assert!(parse_flags(&s(&["-schemaFile"]), &["schemaFile"], &[]).is_err());
    }
}
