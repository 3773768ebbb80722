//! Segment fetchers by URI scheme (Pinot's `SegmentFetcher`s): how a server gets a segment
//! (or a segment tar) that a push names by URI.
//!
//! | scheme | fetched by |
//! |---|---|
//! | the deep store's own URIs | [`DeepStore::download`] |
//! | `file://` | a local copy, only under the allowed directories ([`Fetchers::new`]): a push must not make the server read any file it can |
//! | `http://`, `https://` | one GET, streamed to the file |
//! | `s3://`, `s3a://`, `gs://`, `az://`, `abfs[s]://` | a [`DeepStore`] opened at the URI's bucket with the options given for that scheme |
//! | anything else | a [`SegmentFetcher`] registered for the scheme ([`Fetchers::register`]) |
//!
//! `hdfs://` has no built-in fetcher: HDFS is reached through an S3 gateway (for example
//! Apache Ozone's or a MinIO gateway) with an `s3://` URI, or a fetcher registered for
//! `hdfs`. Every fetch writes to `<local>.download` and renames it when complete: `local`
//! is whole or absent.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use tokio::io::AsyncWriteExt;

use crate::config::display_uri;
use crate::{DeepStore, StorageError, StorageErrorKind};

/// A fetcher for one URI scheme (a plugin point: register it with [`Fetchers::register`]).
#[async_trait::async_trait]
pub trait SegmentFetcher: Send + Sync + std::fmt::Debug {
    /// The scheme it serves (lower case, without `://`).
    fn scheme(&self) -> &str;
    /// Copies the object at `uri` to the local file `local` (complete or absent) and
    /// returns its size.
    async fn fetch(&self, uri: &str, local: &Path) -> Result<u64, StorageError>;
}

/// Every way this node can fetch a segment by URI.
pub struct Fetchers {
    deep_store: DeepStore,
    file_roots: Vec<PathBuf>,
    options: BTreeMap<String, BTreeMap<String, String>>,
    custom: RwLock<HashMap<String, Arc<dyn SegmentFetcher>>>,
    stores: parking_lot::Mutex<HashMap<String, DeepStore>>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Fetchers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetchers")
            .field("deep_store", &self.deep_store)
            .field("file_roots", &self.file_roots)
            .field("schemes", &self.options.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Fetchers {
    /// Fetchers over this node's deep store; `file_roots` are the directories `file://`
    /// URIs may point into; `options` are object-store options per scheme (`s3` ->
    /// `endpoint`, `region`, keys; the names [`DeepStore::open`] takes).
    pub fn new(
        deep_store: DeepStore,
        file_roots: Vec<PathBuf>,
        options: BTreeMap<String, BTreeMap<String, String>>,
    ) -> Result<Fetchers, StorageError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(600))
            .build()
            .map_err(|e| StorageError::config(format!("http client: {e}")))?;
        let file_roots = file_roots
            .into_iter()
            .map(|r| r.canonicalize().unwrap_or(r))
            .collect();
        Ok(Fetchers {
            deep_store,
            file_roots,
            options,
            custom: RwLock::new(HashMap::new()),
            stores: parking_lot::Mutex::new(HashMap::new()),
            http,
        })
    }

    /// Adds (or replaces) the fetcher of a scheme.
    pub fn register(&self, fetcher: Arc<dyn SegmentFetcher>) {
        let scheme = fetcher.scheme().to_ascii_lowercase();
        self.custom.write().insert(scheme, fetcher);
    }

    /// The node's deep store.
    pub fn deep_store(&self) -> &DeepStore {
        &self.deep_store
    }

    /// Fetches `uri` to `local` (complete or absent) and returns its size.
    pub async fn fetch(&self, uri: &str, local: &Path) -> Result<u64, StorageError> {
        let uri = uri.trim();
        let shown = display_uri(uri);
        let scheme = uri
            .split_once(':')
            .map(|(s, _)| s.to_ascii_lowercase())
            .filter(|s| {
                !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            })
            .ok_or_else(|| StorageError::input(format!("'{shown}' is not a URI with a scheme")))?;
        let custom = self.custom.read().get(&scheme).cloned();
        if let Some(f) = custom {
            return f.fetch(uri, local).await;
        }
        if self.deep_store.contains(uri) {
            return self.deep_store.download(uri, local).await;
        }
        match scheme.as_str() {
            "file" => self.fetch_file(uri, local).await,
            "http" | "https" => self.fetch_http(uri, local).await,
            "s3" | "s3a" | "gs" | "az" | "abfs" | "abfss" => {
                self.store_for(&scheme, uri)?.download(uri, local).await
            }
            "hdfs" => Err(StorageError::config(format!(
                "cannot fetch '{shown}': no fetcher for hdfs:// here; expose HDFS through an S3 gateway and push an s3:// URI, or register a fetcher for hdfs"
            ))),
            other => Err(StorageError::config(format!(
                "cannot fetch '{shown}': no segment fetcher for scheme '{other}'"
            ))),
        }
    }

    fn store_for(&self, scheme: &str, uri: &str) -> Result<DeepStore, StorageError> {
        let url = url::Url::parse(uri).map_err(|e| {
            StorageError::input(format!("'{}' is not a valid URI: {e}", display_uri(uri)))
        })?;
        let bucket = url.host_str().unwrap_or_default();
        let base = format!("{scheme}://{bucket}");
        if let Some(s) = self.stores.lock().get(&base) {
            return Ok(s.clone());
        }
        let key = if scheme == "s3a" { "s3" } else { scheme };
        let key = if scheme == "abfss" { "abfs" } else { key };
        let options = self.options.get(key).cloned().unwrap_or_default();
        let store = DeepStore::open(&base, &options)?;
        self.stores.lock().insert(base, store.clone());
        Ok(store)
    }

    async fn fetch_file(&self, uri: &str, local: &Path) -> Result<u64, StorageError> {
        let shown = display_uri(uri);
        let url = url::Url::parse(&crate::config::normalize_file_uri(uri))
            .map_err(|e| StorageError::input(format!("'{shown}' is not a valid file URI: {e}")))?;
        let path = url
            .to_file_path()
            .map_err(|_| StorageError::input(format!("'{shown}' is not a local file URI")))?;
        let real = path.canonicalize().map_err(|e| {
            StorageError::new(
                StorageErrorKind::NotFound,
                format!("cannot fetch '{shown}': {e}"),
            )
        })?;
        if !self.file_roots.iter().any(|r| real.starts_with(r)) {
            return Err(StorageError::new(
                StorageErrorKind::Unauthorized,
                format!("cannot fetch '{shown}': file URIs are fetched only under the directories the server allows (riffle serve --fetch-file-root)"),
            ));
        }
        let staging = staging_path(local);
        if let Some(dir) = local.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| StorageError::io(&format!("create {}", dir.display()), &e))?;
        }
        let n = tokio::fs::copy(&real, &staging)
            .await
            .map_err(|e| StorageError::io(&format!("copy {}", real.display()), &e))?;
        publish_staged(&staging, local).await?;
        Ok(n)
    }

    async fn fetch_http(&self, uri: &str, local: &Path) -> Result<u64, StorageError> {
        let shown = display_uri(uri);
        let what = format!("fetch {shown}");
        crate::retry(&crate::RetryPolicy::default(), &what, || async {
            let resp = self.http.get(uri).send().await.map_err(|e| {
                let kind = if e.is_connect() || e.is_timeout() {
                    StorageErrorKind::Unavailable
                } else {
                    StorageErrorKind::Internal
                };
                StorageError::new(kind, format!("cannot {what}: {}", without_url(&e)))
            })?;
            let status = resp.status();
            if !status.is_success() {
                let kind = match status.as_u16() {
                    404 | 410 => StorageErrorKind::NotFound,
                    401 | 403 => StorageErrorKind::Unauthorized,
                    429 | 500..=599 => StorageErrorKind::Unavailable,
                    _ => StorageErrorKind::Internal,
                };
                return Err(StorageError::new(
                    kind,
                    format!("cannot {what}: HTTP {status}"),
                ));
            }
            let staging = staging_path(local);
            if let Some(dir) = local.parent() {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| StorageError::io(&format!("create {}", dir.display()), &e))?;
            }
            let mut file = tokio::fs::File::create(&staging)
                .await
                .map_err(|e| StorageError::io(&format!("create {}", staging.display()), &e))?;
            let mut resp = resp;
            let mut n = 0u64;
            loop {
                let chunk = resp.chunk().await.map_err(|e| {
                    StorageError::new(
                        StorageErrorKind::Unavailable,
                        format!("cannot {what}: {}", without_url(&e)),
                    )
                })?;
                let Some(chunk) = chunk else { break };
                n += chunk.len() as u64;
                file.write_all(&chunk)
                    .await
                    .map_err(|e| StorageError::io(&format!("write {}", staging.display()), &e))?;
            }
            file.sync_all()
                .await
                .map_err(|e| StorageError::io(&format!("sync {}", staging.display()), &e))?;
            drop(file);
            publish_staged(&staging, local).await?;
            Ok(n)
        })
        .await
    }
}

fn without_url(e: &reqwest::Error) -> String {
    // The URL may carry a signed query: the message names the URI already.
    let mut e = e.to_string();
    if let Some(i) = e.find(" for url (") {
        e.truncate(i);
    }
    e
}

fn staging_path(local: &Path) -> PathBuf {
    let mut s = local.as_os_str().to_os_string();
    s.push(".download");
    PathBuf::from(s)
}

async fn publish_staged(staging: &Path, local: &Path) -> Result<(), StorageError> {
    tokio::fs::rename(staging, local)
        .await
        .map_err(|e| StorageError::io(&format!("rename to {}", local.display()), &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetchers(root: &Path) -> Fetchers {
        let store = DeepStore::open(
            &format!("file://{}", root.join("deep").display()),
            &BTreeMap::new(),
        )
        .unwrap();
        Fetchers::new(store, vec![root.join("allowed")], BTreeMap::new()).unwrap()
    }

    #[tokio::test]
    async fn file_uris_are_fetched_only_under_the_allowed_roots() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("allowed")).unwrap();
        std::fs::write(dir.path().join("allowed/a.tar.gz"), b"abc").unwrap();
        std::fs::write(dir.path().join("secret"), b"no").unwrap();
        let f = fetchers(dir.path());
        let out = dir.path().join("out/x");
        let uri = format!("file://{}", dir.path().join("allowed/a.tar.gz").display());
        assert_eq!(f.fetch(&uri, &out).await.unwrap(), 3);
        assert_eq!(std::fs::read(&out).unwrap(), b"abc");
        let sneaky = format!("file://{}/allowed/../secret", dir.path().display());
        let e = f.fetch(&sneaky, &out).await.unwrap_err();
        assert_eq!(e.kind(), StorageErrorKind::Unauthorized, "{e}");
        let e = f.fetch("hdfs://nn/x", &out).await.unwrap_err();
        assert!(e.to_string().contains("S3 gateway"), "{e}");
        let e = f.fetch("nope", &out).await.unwrap_err();
        assert_eq!(e.kind(), StorageErrorKind::InvalidInput);
        let e = f.fetch("ftp://h/x", &out).await.unwrap_err();
        assert!(
            e.to_string()
                .contains("no segment fetcher for scheme 'ftp'"),
            "{e}"
        );
    }

    #[derive(Debug)]
    struct Echo;

    #[async_trait::async_trait]
    impl SegmentFetcher for Echo {
        fn scheme(&self) -> &str {
            "echo"
        }
        async fn fetch(&self, uri: &str, local: &Path) -> Result<u64, StorageError> {
            std::fs::write(local, uri).map_err(|e| StorageError::io("write", &e))?;
            Ok(uri.len() as u64)
        }
    }

    #[tokio::test]
    async fn a_registered_scheme_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let f = fetchers(dir.path());
        f.register(Arc::new(Echo));
        let out = dir.path().join("o");
        f.fetch("echo://hi", &out).await.unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "echo://hi");
    }
}
