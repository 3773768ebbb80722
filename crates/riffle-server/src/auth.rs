//! Pinot's basic-auth access control for the controller and the broker.
//!
//! Principals are configured as Pinot configures them, in a properties file:
//!
//! ```text
//! controller.admin.access.control.principals=admin,user
//! controller.admin.access.control.principals.admin.password=verysecret
//! controller.admin.access.control.principals.user.password=secret
//! controller.admin.access.control.principals.user.tables=airlineStats,events
//! controller.admin.access.control.principals.user.permissions=READ
//! pinot.broker.access.control.principals=admin,user
//! pinot.broker.access.control.principals.admin.password=verysecret
//! pinot.broker.access.control.principals.user.password=secret
//! pinot.broker.access.control.principals.user.tables=airlineStats
//! ```
//!
//! A principal without `tables` may use every table; without `permissions` it has all of
//! `READ`, `CREATE`, `UPDATE`, `DELETE`. When only one role lists principals, the other
//! uses the same ones. Clients authenticate with `Authorization: Basic base64(user:pass)`,
//! or `Bearer <token>` where the token is that same base64 text (Pinot's tokens).
//!
//! Controller requests need `READ` for `GET` and for queries (`POST /sql`), `CREATE` for
//! `POST /schemas` and `POST /tables`, `DELETE` for `DELETE`, `UPDATE` for everything else;
//! a table named in the path (or, for a create, in the body) must be among the principal's
//! tables. Queries (broker, or the controller's `/sql`) need `READ` and every table they
//! read among the principal's tables (else error 180); `/metrics` shows only those tables.
//! `/health` is always open. Missing or wrong credentials: 401; not allowed: 403.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use riffle_common::{split_table_name, ErrorKind};

use crate::error::ApiError;

/// What a principal may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    /// Read configs, state and query.
    Read,
    /// Add schemas and tables.
    Create,
    /// Change them (configs, pause, resume, force commit, ...).
    Update,
    /// Delete them.
    Delete,
}

impl Permission {
    fn parse(s: &str) -> Option<Permission> {
        match s.trim().to_ascii_uppercase().as_str() {
            "READ" => Some(Permission::Read),
            "CREATE" => Some(Permission::Create),
            "UPDATE" => Some(Permission::Update),
            "DELETE" => Some(Permission::Delete),
            _ => None,
        }
    }
}

/// One user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// Its name.
    pub name: String,
    password: String,
    /// Raw table names it may use; `None`: all.
    pub tables: Option<BTreeSet<String>>,
    /// What it may do; `None`: everything.
    pub permissions: Option<BTreeSet<Permission>>,
}

impl Principal {
    /// Whether it has `p`.
    pub fn can(&self, p: Permission) -> bool {
        self.permissions.as_ref().is_none_or(|s| s.contains(&p))
    }

    /// Whether it may use the table `raw` (any case of the suffix stripped).
    pub fn may_use(&self, table: &str) -> bool {
        let (raw, _) = split_table_name(table);
        self.tables.as_ref().is_none_or(|t| t.contains(raw))
    }
}

/// The principals of one role; none: access is open.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessControl {
    principals: Vec<Principal>,
}

/// Principals of both roles.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthConfig {
    /// The controller's.
    pub controller: AccessControl,
    /// The broker's.
    pub broker: AccessControl,
}

const CONTROLLER_PREFIX: &str = "controller.admin.access.control.principals";
const BROKER_PREFIX: &str = "pinot.broker.access.control.principals";

impl AuthConfig {
    /// Parses Pinot's properties (`key=value` lines, `#` comments); an error names the key.
    pub fn parse(text: &str) -> Result<AuthConfig, String> {
        let mut props = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .or_else(|| line.split_once(':'))
                .ok_or_else(|| format!("line {}: expected key=value", i + 1))?;
            props.insert(k.trim().to_string(), v.trim().to_string());
        }
        let mut controller = AccessControl::from_props(&props, CONTROLLER_PREFIX)?;
        let mut broker = AccessControl::from_props(&props, BROKER_PREFIX)?;
        if controller.principals.is_empty() {
            controller = broker.clone();
        }
        if broker.principals.is_empty() {
            broker = controller.clone();
        }
        Ok(AuthConfig { controller, broker })
    }

    /// Whether any principal is configured.
    pub fn is_enabled(&self) -> bool {
        self.controller.is_enabled() || self.broker.is_enabled()
    }
}

impl AccessControl {
    fn from_props(props: &BTreeMap<String, String>, prefix: &str) -> Result<AccessControl, String> {
        let Some(names) = props.get(prefix) else {
            return Ok(AccessControl::default());
        };
        let mut principals = Vec::new();
        for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let key = |k: &str| format!("{prefix}.{name}.{k}");
            let password = props
                .get(&key("password"))
                .filter(|p| !p.is_empty())
                .ok_or_else(|| {
                    format!(
                        "{}: missing (every principal needs a password)",
                        key("password")
                    )
                })?
                .clone();
            let list = |k: &str| {
                props.get(&key(k)).map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
            };
            let tables = list("tables").map(|t| {
                t.iter()
                    .map(|t| split_table_name(t).0.to_string())
                    .collect::<BTreeSet<_>>()
            });
            let permissions = match list("permissions") {
                None => None,
                Some(ps) => Some(
                    ps.iter()
                        .map(|p| {
                            Permission::parse(p).ok_or_else(|| {
                                format!(
                                    "{}: '{p}' is not one of READ, CREATE, UPDATE, DELETE",
                                    key("permissions")
                                )
                            })
                        })
                        .collect::<Result<BTreeSet<_>, _>>()?,
                ),
            };
            principals.push(Principal {
                name: name.to_string(),
                password,
                tables,
                permissions,
            });
        }
        Ok(AccessControl { principals })
    }

    /// Whether any principal is configured (else access is open).
    pub fn is_enabled(&self) -> bool {
        !self.principals.is_empty()
    }

    /// The principal an `Authorization` header value names, if its password matches.
    pub fn authenticate(&self, header: Option<&str>) -> Option<&Principal> {
        let value = header?.trim();
        let (scheme, token) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") && !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(token.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        self.principals.iter().find(|p| {
            p.name == user && constant_time_eq(p.password.as_bytes(), password.as_bytes())
        })
    }
}

/// Compares without stopping at the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The authenticated caller of a broker request (in the request's extensions).
#[derive(Clone, Debug)]
pub struct Caller(pub Option<Principal>);

fn unauthorized() -> Response {
    let mut r =
        ApiError::new(ErrorKind::Unauthenticated, "authentication required").into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Basic realm=\"riffle\""),
    );
    r
}

fn denied(who: &str, what: &str) -> Response {
    ApiError::new(
        ErrorKind::AccessDenied,
        format!("Permission denied: principal '{who}' may not {what}"),
    )
    .into_response()
}

fn authorization(req: &Request) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

/// The broker's check: a known principal with `READ`; its tables go with the request.
pub async fn broker(
    State(ac): State<Arc<AccessControl>>,
    mut req: Request,
    next: Next,
) -> Response {
    if !ac.is_enabled() || req.uri().path() == "/health" {
        req.extensions_mut().insert(Caller(None));
        return next.run(req).await;
    }
    let Some(p) = ac.authenticate(authorization(&req)).cloned() else {
        return unauthorized();
    };
    if !p.can(Permission::Read) {
        return denied(&p.name, "query");
    }
    req.extensions_mut().insert(Caller(Some(p)));
    next.run(req).await
}

/// The table a controller path names (`/tables/{t}`, `/schemas/{s}`, `/segments/{t}`, ...).
fn path_table(path: &str) -> Option<String> {
    let mut parts = path.trim_start_matches('/').split('/');
    let first = parts.next()?;
    if !matches!(first, "tables" | "schemas" | "segments") {
        return None;
    }
    let name = parts.next().filter(|s| !s.is_empty())?;
    let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
    Some(split_table_name(&name).0.to_string())
}

/// The controller's check: a known principal with the permission the request needs, on
/// the table it names.
pub async fn controller(
    State(ac): State<Arc<AccessControl>>,
    mut req: Request,
    next: Next,
) -> Response {
    if !ac.is_enabled() || req.uri().path() == "/health" {
        req.extensions_mut().insert(Caller(None));
        return next.run(req).await;
    }
    let Some(p) = ac.authenticate(authorization(&req)).cloned() else {
        return unauthorized();
    };
    // Handlers that answer for many tables (`/sql`, `/metrics`) narrow to the caller's.
    req.extensions_mut().insert(Caller(Some(p.clone())));
    let path = req.uri().path().to_string();
    let creates = req.method() == Method::POST && matches!(path.as_str(), "/tables" | "/schemas");
    let need = match *req.method() {
        Method::GET | Method::HEAD | Method::OPTIONS => Permission::Read,
        // A query through the controller reads, whatever its method.
        Method::POST if path == "/sql" => Permission::Read,
        Method::DELETE => Permission::Delete,
        _ if creates => Permission::Create,
        _ => Permission::Update,
    };
    if !p.can(need) {
        return denied(&p.name, &format!("{} {path}", req.method()));
    }
    if p.tables.is_none() {
        return next.run(req).await;
    }
    if let Some(t) = path_table(&path) {
        if !p.may_use(&t) {
            return denied(&p.name, &format!("use table '{t}'"));
        }
        return next.run(req).await;
    }
    if !creates {
        // Listings and cluster endpoints: readable by anyone with READ.
        return next.run(req).await;
    }
    // A create names its table in the body.
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, 16 << 20).await {
        Ok(b) => b,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("cannot read the body: {e}"),
            )
                .into_response()
        }
    };
    let named = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| {
            v.get("tableName")
                .or_else(|| v.get("schemaName"))
                .and_then(|n| n.as_str())
                .map(|n| split_table_name(n).0.to_string())
        });
    match named {
        Some(t) if p.may_use(&t) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Some(t) => denied(&p.name, &format!("use table '{t}'")),
        None => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROPS: &str = "
# users
controller.admin.access.control.principals=admin, user
controller.admin.access.control.principals.admin.password=verysecret
controller.admin.access.control.principals.user.password=secret
controller.admin.access.control.principals.user.tables=events_REALTIME,other
controller.admin.access.control.principals.user.permissions=READ
";

    fn basic(user: &str, pass: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        )
    }

    #[test]
    fn principals_parse_and_authenticate() {
        let c = AuthConfig::parse(PROPS).unwrap_or_default();
        assert!(c.is_enabled());
        // The broker has none of its own: it uses the controller's.
        assert_eq!(c.broker, c.controller);
        let ac = &c.controller;
        let admin = ac.authenticate(Some(&basic("admin", "verysecret")));
        assert!(admin.is_some_and(|p| p.can(Permission::Delete) && p.may_use("x")));
        let user = ac.authenticate(Some(&basic("user", "secret")));
        assert!(user.is_some_and(|p| p.can(Permission::Read)
            && !p.can(Permission::Update)
            && p.may_use("events")
            && p.may_use("events_OFFLINE")
            && !p.may_use("secret")));
        assert!(ac.authenticate(Some(&basic("user", "wrong"))).is_none());
        assert!(ac.authenticate(Some(&basic("nobody", "secret"))).is_none());
        assert!(ac.authenticate(None).is_none());
        assert!(ac.authenticate(Some("Basic !!!")).is_none());
        let token = basic("admin", "verysecret").replace("Basic", "Bearer");
        assert!(ac.authenticate(Some(&token)).is_some());
    }

    #[test]
    fn bad_properties_name_the_key() {
        let e = AuthConfig::parse("controller.admin.access.control.principals=a\n").unwrap_err();
        assert!(e.contains("principals.a.password"), "{e}");
        let e = AuthConfig::parse(
            "pinot.broker.access.control.principals=a\npinot.broker.access.control.principals.a.password=x\npinot.broker.access.control.principals.a.permissions=READ,WRITE\n",
        )
        .unwrap_err();
        assert!(e.contains("WRITE") && e.contains("permissions"), "{e}");
        assert!(AuthConfig::parse("no equals sign").is_err());
    }

    #[test]
    fn path_tables() {
        assert_eq!(
            path_table("/tables/events_REALTIME/pauseConsumption").as_deref(),
            Some("events")
        );
        assert_eq!(path_table("/schemas/a%2Fb").as_deref(), Some("a/b"));
        assert_eq!(path_table("/tables"), None);
        assert_eq!(path_table("/health"), None);
    }
}
