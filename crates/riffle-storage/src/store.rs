//! [`DeepStore`]: upload, download, list and delete segment files under one base URI.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::{Path as ObjectPath, PathPart};
use object_store::{GetOptions, ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload};
use riffle_common::fsync::{publish, with_suffix};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

use crate::config::{self, normalize_file_uri, Scheme};
use crate::error::{StorageError, StorageErrorKind};
use crate::retry::{retry, RetryPolicy};

/// Parts of one multipart upload in flight at once.
const UPLOAD_CONCURRENCY: usize = 4;

/// The deep store: segment files under one base URI (Pinot's PinotFS and segment fetcher).
/// Cheap to clone: clones share one client.
#[derive(Clone)]
pub struct DeepStore {
    inner: Arc<Inner>,
}

struct Inner {
    scheme: Scheme,
    /// The canonical base URI (no trailing slash, no credentials).
    base: String,
    /// The client, rooted at the base.
    store: Arc<dyn ObjectStore>,
    /// The same client when the store is a local directory.
    local: Option<Arc<LocalFileSystem>>,
    part_size: usize,
    secrets: Vec<String>,
    option_keys: Vec<String>,
    retry: RetryPolicy,
}

impl fmt::Debug for DeepStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Option names only: their values may be credentials.
        f.debug_struct("DeepStore")
            .field("uri", &self.inner.base)
            .field("scheme", &self.inner.scheme.name())
            .field("options", &self.inner.option_keys)
            .field("part_size", &self.inner.part_size)
            .finish()
    }
}

impl DeepStore {
    /// Opens the deep store at `uri` with `options` (see the crate documentation for the
    /// schemes and keys). A `file://` directory is created if missing; remote stores are
    /// not contacted until the first operation.
    pub fn open(uri: &str, options: &BTreeMap<String, String>) -> Result<DeepStore, StorageError> {
        let opened = config::open(uri, options)?;
        Ok(DeepStore {
            inner: Arc::new(Inner {
                scheme: opened.scheme,
                base: opened.base,
                store: opened.store,
                local: opened.local,
                part_size: opened.part_size,
                secrets: opened.secrets,
                option_keys: opened.option_keys,
                retry: RetryPolicy::default(),
            }),
        })
    }

    /// The same store with another policy for retrying whole operations.
    pub fn with_retry_policy(self, policy: RetryPolicy) -> DeepStore {
        let inner = &self.inner;
        DeepStore {
            inner: Arc::new(Inner {
                scheme: inner.scheme,
                base: inner.base.clone(),
                store: Arc::clone(&inner.store),
                local: inner.local.clone(),
                part_size: inner.part_size,
                secrets: inner.secrets.clone(),
                option_keys: inner.option_keys.clone(),
                retry: policy,
            }),
        }
    }

    /// The base URI, canonical (no trailing slash) and without secrets.
    pub fn uri(&self) -> &str {
        &self.inner.base
    }

    /// The size of an upload part and of a download range request.
    pub fn part_size(&self) -> usize {
        self.inner.part_size
    }

    /// The URI of `<base>/<table>/<segment>`, where [`DeepStore::upload`] puts it.
    pub fn segment_uri(&self, table: &str, segment: &str) -> Result<String, StorageError> {
        Ok(self.uri_of(&segment_key(table, segment)?))
    }

    /// Uploads the local file `local` to `<base>/<table>/<segment>` and returns that
    /// object's URI. A file larger than the part size goes up in parts, a few at a time,
    /// so memory stays bounded. An existing object under the key is replaced: uploading
    /// again is harmless.
    pub async fn upload(
        &self,
        local: &Path,
        table: &str,
        segment: &str,
    ) -> Result<String, StorageError> {
        let key = segment_key(table, segment)?;
        let uri = self.uri_of(&key);
        let what = format!("upload {} to {uri}", local.display());
        retry(&self.inner.retry, &what, || {
            self.upload_once(local, &key, &what)
        })
        .await?;
        Ok(uri)
    }

    /// Uploads the local file `local` to `uri`, an object under this store's base (a push
    /// job's output, a segment tar), replacing what is there.
    pub async fn upload_to(&self, local: &Path, uri: &str) -> Result<(), StorageError> {
        let key = self.key_of_uri(uri)?;
        let what = format!("upload {} to {}", local.display(), self.uri_of(&key));
        retry(&self.inner.retry, &what, || {
            self.upload_once(local, &key, &what)
        })
        .await
    }

    /// Whether `uri` names an object under this store's base.
    pub fn contains(&self, uri: &str) -> bool {
        self.key_of_uri(uri).is_ok()
    }

    /// The objects whose URI starts with `<dir>/` (a directory under this store's base, or
    /// the base itself), at any depth, as (URI, size), sorted by URI.
    pub async fn list_dir(&self, dir: &str) -> Result<Vec<(String, u64)>, StorageError> {
        let normalized = normalize_file_uri(dir.trim().trim_end_matches('/'));
        let base = &self.inner.base;
        let prefix = if normalized == *base {
            None
        } else {
            Some(self.key_of_uri(&normalized)?)
        };
        let what = format!("list {}/", config::display_uri(&normalized));
        self.list_under(prefix.as_ref(), &what).await
    }

    /// The objects under `prefix` (the whole store for `None`) as (URI, size), sorted.
    async fn list_under(
        &self,
        prefix: Option<&ObjectPath>,
        what: &str,
    ) -> Result<Vec<(String, u64)>, StorageError> {
        let metas = retry(&self.inner.retry, what, || async {
            let mut out = Vec::new();
            let mut stream = self.inner.store.list(prefix);
            while let Some(meta) = stream.next().await {
                out.push(meta.map_err(|e| self.store_error(what, &e))?);
            }
            Ok(out)
        })
        .await?;
        let mut out: Vec<(String, u64)> = metas
            .into_iter()
            .map(|m| (self.uri_of(&m.location), m.size))
            .collect();
        out.sort();
        Ok(out)
    }

    async fn upload_once(
        &self,
        local: &Path,
        key: &ObjectPath,
        what: &str,
    ) -> Result<(), StorageError> {
        let mut file = tokio::fs::File::open(local)
            .await
            .map_err(|e| StorageError::io(&format!("open {}", local.display()), &e))?;
        let meta = file
            .metadata()
            .await
            .map_err(|e| StorageError::io(&format!("stat {}", local.display()), &e))?;
        if !meta.is_file() {
            return Err(StorageError::input(format!(
                "cannot {what}: {} is not a file",
                local.display()
            )));
        }
        if let Some(fs) = &self.inner.local {
            // A local store: a copy inside the kernel, no bytes through this process.
            let dest = fs
                .path_to_filesystem(key)
                .map_err(|e| self.store_error(what, &e))?;
            let (from, doing) = (local.to_path_buf(), what.to_string());
            return tokio::task::spawn_blocking(move || copy_local(&from, &dest, &doing))
                .await
                .map_err(|e| {
                    StorageError::new(StorageErrorKind::Internal, format!("cannot {what}: {e}"))
                })?;
        }
        let part_size = self.inner.part_size;
        let store = &self.inner.store;
        if meta.len() <= part_size as u64 {
            let data = read_chunk(&mut file, part_size, local).await?;
            store
                .put(key, PutPayload::from(data))
                .await
                .map_err(|e| self.store_error(what, &e))?;
            return Ok(());
        }

        let mut upload = store
            .put_multipart(key)
            .await
            .map_err(|e| self.store_error(what, &e))?;
        // Parts run as tasks so that they progress while the next one is read.
        let mut parts: JoinSet<object_store::Result<()>> = JoinSet::new();
        let sent: Result<(), StorageError> = async {
            loop {
                let data = read_chunk(&mut file, part_size, local).await?;
                if data.is_empty() {
                    break;
                }
                while parts.len() >= UPLOAD_CONCURRENCY {
                    self.join_part(&mut parts, what).await?;
                }
                let last = data.len() < part_size;
                parts.spawn(upload.put_part(PutPayload::from(data)));
                if last {
                    break;
                }
            }
            while !parts.is_empty() {
                self.join_part(&mut parts, what).await?;
            }
            upload
                .complete()
                .await
                .map_err(|e| self.store_error(what, &e))?;
            Ok(())
        }
        .await;
        if let Err(e) = sent {
            parts.abort_all();
            if let Err(abort) = upload.abort().await {
                tracing::info!(
                    "{what}: cannot abort the multipart upload: {}",
                    self.store_error("abort", &abort)
                );
            }
            return Err(e);
        }
        Ok(())
    }

    async fn join_part(
        &self,
        parts: &mut JoinSet<object_store::Result<()>>,
        what: &str,
    ) -> Result<(), StorageError> {
        match parts.join_next().await {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(self.store_error(what, &e)),
            Some(Err(e)) => Err(StorageError::new(
                StorageErrorKind::Internal,
                format!("cannot {what}: upload task failed: {e}"),
            )),
        }
    }

    /// Downloads `uri` (an object under this store's base) to `local` and returns its size.
    /// The bytes go to `<local>.download` (parent directories are created), which is
    /// synced and then renamed to `local`: `local` is either complete or absent (an older
    /// `local` is replaced only by a complete new one).
    pub async fn download(&self, uri: &str, local: &Path) -> Result<u64, StorageError> {
        let key = self.key_of_uri(uri)?;
        let shown = self.uri_of(&key);
        let what = format!("download {shown} to {}", local.display());
        retry(&self.inner.retry, &what, || {
            self.download_once(&key, local, &what)
        })
        .await
    }

    async fn download_once(
        &self,
        key: &ObjectPath,
        local: &Path,
        what: &str,
    ) -> Result<u64, StorageError> {
        let meta = self
            .inner
            .store
            .head(key)
            .await
            .map_err(|e| self.store_error(what, &e))?;
        if let Some(parent) = local.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| StorageError::io(&format!("create {}", parent.display()), &e))?;
        }
        let tmp = with_suffix(local, ".download");
        let fetched = self.fetch_into(key, &meta, &tmp, what).await;
        let size = match fetched {
            Ok(size) => size,
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(e);
            }
        };
        let (staged, dest) = (tmp.clone(), local.to_path_buf());
        let published = tokio::task::spawn_blocking(move || publish(&staged, &dest))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
        if let Err(e) = published {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(StorageError::io(
                &format!("rename {} to {}", tmp.display(), local.display()),
                &e,
            ));
        }
        Ok(size)
    }

    /// Writes the object to `tmp` in range requests of one part each (a request's timeout
    /// covers its body: one request for a large object could not finish in time on a slow
    /// link). Every range is read with the first one's ETag, so an object replaced midway
    /// fails the download (and the retry starts over) instead of mixing two versions.
    async fn fetch_into(
        &self,
        key: &ObjectPath,
        meta: &ObjectMeta,
        tmp: &Path,
        what: &str,
    ) -> Result<u64, StorageError> {
        let io = |e: std::io::Error| StorageError::io(&format!("write {}", tmp.display()), &e);
        let mut file = tokio::fs::File::create(tmp).await.map_err(io)?;
        let part = self.inner.part_size as u64;
        let mut offset = 0u64;
        while offset < meta.size {
            let end = meta.size.min(offset + part);
            let options = GetOptions::new()
                .with_range(Some(offset..end))
                .with_if_match(meta.e_tag.clone());
            let got = self
                .inner
                .store
                .get_opts(key, options)
                .await
                .map_err(|e| self.store_error(what, &e))?;
            let mut body = got.into_stream();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| self.store_error(what, &e))?;
                file.write_all(&chunk).await.map_err(io)?;
                offset += chunk.len() as u64;
            }
            if offset != end {
                return Err(StorageError::new(
                    StorageErrorKind::Unavailable,
                    format!("cannot {what}: the store sent {offset} bytes where {end} were due"),
                ));
            }
        }
        file.flush().await.map_err(io)?;
        file.sync_all().await.map_err(io)?;
        Ok(offset)
    }

    /// Deletes the object at `uri` (under this store's base). A missing object is not an
    /// error.
    pub async fn delete(&self, uri: &str) -> Result<(), StorageError> {
        let key = self.key_of_uri(uri)?;
        self.delete_key(&key).await
    }

    async fn delete_key(&self, key: &ObjectPath) -> Result<(), StorageError> {
        let what = format!("delete {}", self.uri_of(key));
        retry(&self.inner.retry, &what, || async {
            match self.inner.store.delete(key).await {
                Ok(()) => Ok(()),
                Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(self.store_error(&what, &e)),
            }
        })
        .await
    }

    /// The objects under `<base>/<table>/` (at any depth) as (URI, size), sorted by URI.
    pub async fn list(&self, table: &str) -> Result<Vec<(String, u64)>, StorageError> {
        let prefix = table_key(table)?;
        let what = format!("list {}/", self.uri_of(&prefix));
        self.list_under(Some(&prefix), &what).await
    }

    /// Deletes every object under `<base>/<table>/` that is not `<base>/<table>/<name>` for a
    /// segment name in `keep` (segments uploaded but never committed, segments of a deleted
    /// table) and returns the URIs deleted. Objects are matched by their key, not by the
    /// URI recorded at upload, so a store whose base moved (a relocated data directory, a
    /// copied bucket) keeps its committed segments. Stops at the first failure.
    pub async fn remove_unreferenced(
        &self,
        table: &str,
        keep: &HashSet<String>,
    ) -> Result<Vec<String>, StorageError> {
        let mut deleted = Vec::new();
        for (uri, _) in self.list(table).await? {
            let key = self.key_of_uri(&uri)?;
            let parts: Vec<_> = key.parts().collect();
            let kept = parts.len() == 2 && keep.contains(parts[1].as_ref());
            if kept {
                continue;
            }
            self.delete_key(&key).await?;
            deleted.push(uri);
        }
        // A local store stages an upload in `<object>#<n>` and renames it when complete; a
        // crash mid-upload leaves the staging file, which listing does not show. (An S3
        // multipart upload cut short stays invisible and is left to the bucket's lifecycle
        // rule for incomplete uploads.)
        if self.inner.scheme == config::Scheme::File {
            if let Some(dir) = self.inner.base.strip_prefix("file://") {
                let dir = Path::new(dir).join(table);
                if let Ok(entries) = std::fs::read_dir(&dir) {
                    for e in entries.flatten() {
                        let name = e.file_name().to_string_lossy().to_string();
                        if name.contains('#') && std::fs::remove_file(e.path()).is_ok() {
                            deleted.push(format!("{}/{table}/{name}", self.inner.base));
                        }
                    }
                }
            }
        }
        Ok(deleted)
    }

    /// `<base>/<key>`.
    fn uri_of(&self, key: &ObjectPath) -> String {
        format!("{}/{}", self.inner.base, key.as_ref())
    }

    /// The key of a URI under this store's base.
    fn key_of_uri(&self, uri: &str) -> Result<ObjectPath, StorageError> {
        let normalized = normalize_file_uri(uri.trim());
        let base = &self.inner.base;
        let rest = normalized
            .strip_prefix(base.as_str())
            .and_then(|r| r.strip_prefix('/'))
            .filter(|r| !r.is_empty() && !r.ends_with('/'))
            .ok_or_else(|| {
                StorageError::input(format!(
                    "uri '{}' is not an object under the deep store {base}",
                    config::display_uri(uri)
                ))
            })?;
        ObjectPath::parse(rest).map_err(|e| {
            StorageError::input(format!(
                "uri '{}' does not name an object: {e}",
                config::display_uri(uri)
            ))
        })
    }

    fn store_error(&self, what: &str, e: &object_store::Error) -> StorageError {
        StorageError::store(what, e, &self.inner.secrets)
    }
}

/// A table or segment name as one key segment: not empty, not `.` or `..`, no `/` and no
/// control characters. Other characters object_store avoids in keys are percent-encoded.
fn name_part<'a>(what: &str, name: &'a str) -> Result<PathPart<'a>, StorageError> {
    if name.is_empty() {
        return Err(StorageError::input(format!("{what} name is empty")));
    }
    PathPart::parse(name).map_err(|e| {
        StorageError::input(format!(
            "{what} name '{}' cannot be a key segment: {e}",
            name.escape_debug()
        ))
    })?;
    Ok(PathPart::from(name))
}

fn table_key(table: &str) -> Result<ObjectPath, StorageError> {
    Ok(ObjectPath::from_iter([name_part("table", table)?]))
}

fn segment_key(table: &str, segment: &str) -> Result<ObjectPath, StorageError> {
    Ok(ObjectPath::from_iter([
        name_part("table", table)?,
        name_part("segment", segment)?,
    ]))
}

/// Up to `size` bytes of `file` (fewer only at its end).
/// Copies `from` to `dest` the way a local store publishes an object: into a staging file
/// `<dest>#0` (hidden from listings, removed by [`DeepStore::remove_unreferenced`]),
/// synced, then renamed over `dest`, and the directory synced. A reader sees the old object
/// or the whole new one, and after a crash of the machine the object is complete or
/// absent.
fn copy_local(from: &Path, dest: &Path, what: &str) -> Result<(), StorageError> {
    let fail = |e: std::io::Error| StorageError::io(what, &e);
    let dir = dest
        .parent()
        .ok_or_else(|| StorageError::input(format!("cannot {what}: no parent directory")))?;
    std::fs::create_dir_all(dir).map_err(fail)?;
    let staging = with_suffix(dest, "#0");
    let copied = (|| {
        std::fs::copy(from, &staging)?;
        std::fs::File::open(&staging)?.sync_all()?;
        publish(&staging, dest)
    })();
    if copied.is_err() {
        let _ = std::fs::remove_file(&staging);
    }
    copied.map_err(fail)
}

async fn read_chunk(
    file: &mut tokio::fs::File,
    size: usize,
    path: &Path,
) -> Result<Bytes, StorageError> {
    let mut buf = vec![0u8; size];
    let mut filled = 0;
    while filled < size {
        let n = file
            .read(&mut buf[filled..])
            .await
            .map_err(|e| StorageError::io(&format!("read {}", path.display()), &e))?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    buf.truncate(filled);
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_segment_key_rejects_bad_names() {
        assert_eq!(
            segment_key("t", "s").map(|k| k.to_string()).ok().as_deref(),
            Some("t/s")
        );
        for (t, s) in [("", "s"), ("t", ""), ("t", "a/b"), ("..", "s"), ("t", ".")] {
            let e = segment_key(t, s).err().map(|e| e.kind);
            assert_eq!(e, Some(StorageErrorKind::InvalidInput), "{t:?} {s:?}");
        }
    }
}
