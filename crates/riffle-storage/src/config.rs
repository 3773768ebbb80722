//! Parsing a deep-store URI and its options into an `object_store` client.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::http::HttpBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ClientConfigKey, ClientOptions, ObjectStore, RetryConfig};
use url::Url;

use crate::error::{redact, StorageError};

/// Riffle's own option: the size of an upload part and of a download range request.
pub(crate) const PART_SIZE_KEY: &str = "upload_part_size";
/// The default part size.
pub(crate) const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;
/// S3's smallest part (every part but the last).
pub(crate) const MIN_PART_SIZE: usize = 5 * 1024 * 1024;
/// S3's largest part.
pub(crate) const MAX_PART_SIZE: usize = 5 * 1024 * 1024 * 1024;

/// Default TCP (and TLS) connect timeout: an unreachable endpoint fails within seconds.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Default timeout of one HTTP request, its body included. Requests carry at most one part
/// (8 MiB by default), so this allows for links down to ~150 KB/s.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The prefixes of Pinot's PinotFS S3 settings (`pinot.controller.storage.factory.s3.region`
/// and so on); the rest of the name is the key.
const PINOT_S3_PREFIXES: [&str; 3] = [
    "pinot.controller.storage.factory.s3.",
    "pinot.server.storage.factory.s3.",
    "pinot.minion.storage.factory.s3.",
];

/// Which kind of store a URI names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scheme {
    File,
    S3,
    Gcs,
    Azure,
    Http,
}

impl Scheme {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Scheme::File => "file",
            Scheme::S3 => "s3",
            Scheme::Gcs => "gs",
            Scheme::Azure => "azure",
            Scheme::Http => "http",
        }
    }
}

/// Everything `open` derives from the URI and the options.
pub(crate) struct Opened {
    pub scheme: Scheme,
    /// The canonical base URI: no trailing slash, no credentials, no query.
    pub base: String,
    /// The client, rooted at the base (keys are relative to it).
    pub store: Arc<dyn ObjectStore>,
    /// The same client when the store is a local directory (`file://`).
    pub local: Option<Arc<LocalFileSystem>>,
    pub part_size: usize,
    /// Values of secret options, kept out of messages.
    pub secrets: Vec<String>,
    /// The option names as given (for `Debug`).
    pub option_keys: Vec<String>,
}

/// A URI as it may be shown: without user info (credentials) and query.
pub(crate) fn display_uri(uri: &str) -> String {
    let without_query = uri.split(['?', '#']).next().unwrap_or_default();
    match without_query.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            match authority.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://<redacted>@{host}{path}"),
                None => without_query.to_string(),
            }
        }
        None => without_query.to_string(),
    }
}

/// `file:/abs` (Java's `File.toURI()` form, which Pinot writes) and `file://localhost/abs`
/// as `file:///abs`; other URIs unchanged.
pub(crate) fn normalize_file_uri(uri: &str) -> String {
    if let Some(rest) = uri.strip_prefix("file://localhost/") {
        return format!("file:///{rest}");
    }
    match uri.strip_prefix("file:") {
        Some(rest) if rest.starts_with('/') && !rest.starts_with("//") => format!("file://{rest}"),
        _ => uri.to_string(),
    }
}

pub(crate) fn open(uri: &str, options: &BTreeMap<String, String>) -> Result<Opened, StorageError> {
    let shown = display_uri(uri.trim());
    let url = Url::parse(uri.trim())
        .map_err(|e| StorageError::config(format!("invalid deep store uri '{shown}': {e}")))?;
    let scheme = match url.scheme() {
        "file" => Scheme::File,
        "s3" | "s3a" => Scheme::S3,
        "gs" => Scheme::Gcs,
        "az" | "azure" | "abfs" | "abfss" | "adl" => Scheme::Azure,
        "http" | "https" => Scheme::Http,
        other => {
            return Err(StorageError::config(format!(
                "unsupported deep store scheme '{other}' in '{shown}': expected file, s3, gs, \
                 az, abfs, http or https"
            )))
        }
    };
    // Azure's `abfs://container@account.dfs.core.windows.net` names the container as a user.
    if url.password().is_some() || (!url.username().is_empty() && scheme != Scheme::Azure) {
        return Err(StorageError::config(format!(
            "deep store uri '{shown}' must not carry credentials: pass them as options"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(StorageError::config(format!(
            "deep store uri '{shown}' must not have a query or a fragment"
        )));
    }

    let mut secrets = Vec::new();
    let mut part_size = DEFAULT_PART_SIZE;
    // (canonical key, given key, value) of the store's own options.
    let mut store_options: Vec<(String, String, String)> = Vec::new();
    for (key, value) in options {
        if key == PART_SIZE_KEY {
            part_size = parse_part_size(value)?;
            continue;
        }
        let canonical = canonical_key(scheme, key).ok_or_else(|| {
            StorageError::config(format!(
                "unknown deep store option '{key}' for a {} uri",
                scheme.name()
            ))
        })?;
        if is_secret(&canonical) {
            secrets.push(value.clone());
        }
        if let Some((_, other, previous)) = store_options.iter().find(|(c, _, _)| *c == canonical) {
            if previous != value {
                return Err(StorageError::config(format!(
                    "deep store options '{other}' and '{key}' both set '{canonical}' to \
                     different values"
                )));
            }
            continue;
        }
        if canonical == "aws_bucket" || canonical == "google_bucket" {
            return Err(StorageError::config(format!(
                "deep store option '{key}' is not accepted: the bucket comes from the uri"
            )));
        }
        store_options.push((canonical, key.clone(), value.clone()));
    }

    let fail = |e: object_store::Error| {
        StorageError::config(format!(
            "invalid deep store config for '{shown}': {}",
            redact(&e.to_string(), &secrets)
        ))
    };
    let host = url.host_str().unwrap_or_default().to_string();
    let (store, prefix): (Arc<dyn ObjectStore>, ObjectPath) = match scheme {
        Scheme::File => {
            // The URL parser reads `file:relative/dir` as `/relative/dir`: refuse it.
            let after_scheme = uri.trim().get("file:".len()..).unwrap_or_default();
            if !after_scheme.starts_with('/') {
                return Err(StorageError::config(format!(
                    "file uri '{shown}' is not an absolute path"
                )));
            }
            if !host.is_empty() && host != "localhost" {
                return Err(StorageError::config(format!(
                    "file uri '{shown}' names host '{host}': only local paths are supported"
                )));
            }
            let dir: PathBuf = url.to_file_path().map_err(|()| {
                StorageError::config(format!("file uri '{shown}' is not an absolute path"))
            })?;
            std::fs::create_dir_all(&dir).map_err(|e| {
                StorageError::io(
                    &format!("create the deep store directory {}", dir.display()),
                    &e,
                )
            })?;
            let fs = Arc::new(
                LocalFileSystem::new_with_prefix(&dir)
                    .map_err(fail)?
                    .with_automatic_cleanup(true),
            );
            let text = dir.to_str().ok_or_else(|| {
                StorageError::config(format!("file uri '{shown}' is not valid UTF-8"))
            })?;
            let base = format!("file://{}", text.trim_end_matches('/'));
            return Ok(Opened {
                scheme,
                base,
                store: fs.clone(),
                local: Some(fs),
                part_size,
                secrets,
                option_keys: options.keys().cloned().collect(),
            });
        }
        Scheme::S3 | Scheme::Gcs | Scheme::Azure if host.is_empty() => {
            return Err(StorageError::config(format!(
                "{} uri '{shown}' has no bucket",
                scheme.name()
            )));
        }
        Scheme::S3 => {
            let mut b = AmazonS3Builder::from_env()
                .with_url(format!("s3://{host}"))
                .with_retry(retry_config());
            b = b
                .with_config(
                    AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
                    fmt_secs(CONNECT_TIMEOUT),
                )
                .with_config(
                    AmazonS3ConfigKey::Client(ClientConfigKey::Timeout),
                    fmt_secs(REQUEST_TIMEOUT),
                );
            // An http:// endpoint (a local S3-compatible server) is allowed as Pinot's S3
            // file system allows it, unless `allow_http` says otherwise.
            let http_endpoint = store_options
                .iter()
                .any(|(c, _, v)| c == "aws_endpoint" && v.starts_with("http://"));
            if http_endpoint && !store_options.iter().any(|(c, _, _)| c == "allow_http") {
                b = b.with_config(
                    AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp),
                    "true",
                );
            }
            for (canonical, _, value) in &store_options {
                if let Ok(k) = canonical.parse::<AmazonS3ConfigKey>() {
                    b = b.with_config(k, value);
                }
            }
            (
                Arc::new(b.build().map_err(fail)?),
                url_prefix(&url, &shown)?,
            )
        }
        Scheme::Gcs => {
            let mut b = GoogleCloudStorageBuilder::from_env()
                .with_url(format!("gs://{host}"))
                .with_retry(retry_config())
                .with_config(
                    GoogleConfigKey::Client(ClientConfigKey::ConnectTimeout),
                    fmt_secs(CONNECT_TIMEOUT),
                )
                .with_config(
                    GoogleConfigKey::Client(ClientConfigKey::Timeout),
                    fmt_secs(REQUEST_TIMEOUT),
                );
            for (canonical, _, value) in &store_options {
                if let Ok(k) = canonical.parse::<GoogleConfigKey>() {
                    b = b.with_config(k, value);
                }
            }
            (
                Arc::new(b.build().map_err(fail)?),
                url_prefix(&url, &shown)?,
            )
        }
        Scheme::Azure => {
            let authority = match url.username() {
                "" => host.clone(),
                container => format!("{container}@{host}"),
            };
            let mut b = MicrosoftAzureBuilder::from_env()
                .with_url(format!("{}://{authority}", url.scheme()))
                .with_retry(retry_config())
                .with_config(
                    AzureConfigKey::Client(ClientConfigKey::ConnectTimeout),
                    fmt_secs(CONNECT_TIMEOUT),
                )
                .with_config(
                    AzureConfigKey::Client(ClientConfigKey::Timeout),
                    fmt_secs(REQUEST_TIMEOUT),
                );
            for (canonical, _, value) in &store_options {
                if let Ok(k) = canonical.parse::<AzureConfigKey>() {
                    b = b.with_config(k, value);
                }
            }
            (
                Arc::new(b.build().map_err(fail)?),
                url_prefix(&url, &shown)?,
            )
        }
        Scheme::Http => {
            let origin = url.origin().ascii_serialization();
            let client = ClientOptions::new()
                .with_connect_timeout(CONNECT_TIMEOUT)
                .with_timeout(REQUEST_TIMEOUT);
            let mut b = HttpBuilder::new()
                .with_url(origin)
                .with_retry(retry_config())
                .with_client_options(client);
            for (canonical, _, value) in &store_options {
                if let Ok(k) = canonical.parse::<ClientConfigKey>() {
                    b = b.with_config(k, value);
                }
            }
            (
                Arc::new(b.build().map_err(fail)?),
                url_prefix(&url, &shown)?,
            )
        }
    };

    let authority = match (scheme, url.username()) {
        (Scheme::Azure, user) if !user.is_empty() => format!("{user}@{host}"),
        (Scheme::Http, _) => url
            .port()
            .map_or_else(|| host.clone(), |p| format!("{host}:{p}")),
        _ => host.clone(),
    };
    let mut base = format!("{}://{authority}", url.scheme());
    if !prefix.as_ref().is_empty() {
        base.push('/');
        base.push_str(prefix.as_ref());
    }
    let store: Arc<dyn ObjectStore> = if prefix.as_ref().is_empty() {
        store
    } else {
        Arc::new(PrefixStore::new(store, prefix))
    };
    Ok(Opened {
        scheme,
        base,
        store,
        local: None,
        part_size,
        secrets,
        option_keys: options.keys().cloned().collect(),
    })
}

/// The key prefix in the URI's path (percent-decoded; empty for a bucket's root).
fn url_prefix(url: &Url, shown: &str) -> Result<ObjectPath, StorageError> {
    ObjectPath::from_url_path(url.path()).map_err(|e| {
        StorageError::config(format!(
            "invalid key prefix in deep store uri '{shown}': {e}"
        ))
    })
}

/// The name under which object_store knows `key` for `scheme`, or `None` if the scheme has
/// no such option. Accepts object_store's names in any case and Pinot's S3 names.
fn canonical_key(scheme: Scheme, key: &str) -> Option<String> {
    match scheme {
        Scheme::File => None,
        Scheme::S3 => {
            let bare = PINOT_S3_PREFIXES
                .iter()
                .find_map(|p| key.strip_prefix(p))
                .unwrap_or(key);
            let mapped = match bare {
                "accessKey" => "aws_access_key_id",
                "secretKey" => "aws_secret_access_key",
                "region" => "aws_region",
                "endpoint" => "aws_endpoint",
                other => other,
            };
            let k: AmazonS3ConfigKey = mapped.to_ascii_lowercase().parse().ok()?;
            Some(k.as_ref().to_string())
        }
        Scheme::Gcs => {
            let k: GoogleConfigKey = key.to_ascii_lowercase().parse().ok()?;
            Some(k.as_ref().to_string())
        }
        Scheme::Azure => {
            let k: AzureConfigKey = key.to_ascii_lowercase().parse().ok()?;
            Some(k.as_ref().to_string())
        }
        Scheme::Http => {
            let k: ClientConfigKey = key.to_ascii_lowercase().parse().ok()?;
            Some(k.as_ref().to_string())
        }
    }
}

/// Whether an option's value is a credential (kept out of messages and `Debug`). Ids
/// (`aws_access_key_id`, `azure_client_id`) are not: hiding them would blank every word
/// that contains one.
fn is_secret(canonical: &str) -> bool {
    !canonical.ends_with("_id")
        && ["secret", "token", "key", "password", "sas"]
            .iter()
            .any(|w| canonical.contains(w))
}

fn parse_part_size(value: &str) -> Result<usize, StorageError> {
    let n: usize = value.trim().parse().map_err(|_| {
        StorageError::config(format!(
            "deep store option '{PART_SIZE_KEY}' must be a number of bytes, not '{value}'"
        ))
    })?;
    if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&n) {
        return Err(StorageError::config(format!(
            "deep store option '{PART_SIZE_KEY}' must be between {MIN_PART_SIZE} and \
             {MAX_PART_SIZE} bytes, not {n}"
        )));
    }
    Ok(n)
}

/// object_store's retries of one request: few and short, so that a dead endpoint is
/// reported within seconds; [`crate::retry`] retries whole operations on top.
fn retry_config() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            base: 2.0,
        },
        max_retries: 2,
        retry_timeout: Duration::from_secs(5),
    }
}

fn fmt_secs(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_display_uri_hides_user_info_and_query() {
        assert_eq!(
            display_uri("s3://key:secret@bucket/p?x=1"),
            "s3://<redacted>@bucket/p"
        );
        assert_eq!(display_uri("file:///tmp/x"), "file:///tmp/x");
    }

    #[test]
    fn test_normalize_file_uri() {
        assert_eq!(normalize_file_uri("file:/tmp/a"), "file:///tmp/a");
        assert_eq!(normalize_file_uri("file:///tmp/a"), "file:///tmp/a");
        assert_eq!(
            normalize_file_uri("file://localhost/tmp/a"),
            "file:///tmp/a"
        );
        assert_eq!(normalize_file_uri("s3://b/a"), "s3://b/a");
    }

    #[test]
    fn test_canonical_keys() {
        let s3 = |k| canonical_key(Scheme::S3, k);
        assert_eq!(s3("endpoint").as_deref(), Some("aws_endpoint"));
        assert_eq!(s3("AWS_ENDPOINT").as_deref(), Some("aws_endpoint"));
        assert_eq!(s3("accessKey").as_deref(), Some("aws_access_key_id"));
        assert_eq!(
            s3("pinot.controller.storage.factory.s3.secretKey").as_deref(),
            Some("aws_secret_access_key")
        );
        assert_eq!(s3("allow_http").as_deref(), Some("allow_http"));
        assert_eq!(s3("aws_allow_http").as_deref(), Some("allow_http"));
        assert_eq!(s3("nonsense"), None);
        assert_eq!(canonical_key(Scheme::File, "region"), None);
        assert!(is_secret("aws_secret_access_key"));
        assert!(!is_secret("aws_region"));
        assert!(!is_secret("aws_access_key_id"));
        assert!(is_secret("aws_session_token"));
    }

    #[test]
    fn test_part_size_bounds() {
        assert!(parse_part_size("5242880").is_ok());
        assert!(parse_part_size("1024").is_err());
        assert!(parse_part_size("lots").is_err());
    }
}
