//! An example segment-fetcher plugin, written against `riffle_storage`'s fetcher API only
//! ([`riffle_storage::SegmentFetcher`]): a URI scheme of the plugin's choosing for a named
//! local volume. `vault://<path>` with `VolumeFetcher::new("vault", "/mnt/vault")` reads
//! `/mnt/vault/<path>`; a path that leaves the volume (`..`, a symbolic link out of it) is
//! refused. A node gets it through `NodeConfig::fetchers`; pushes may then name
//! `vault://...` URIs (`UPLOAD_TYPE: URI`).
//!
//! Invariants: nothing outside the volume is read; the local file is written whole or not
//! at all (`<local>.download`, then renamed).

use std::path::{Path, PathBuf};

use riffle_storage::{SegmentFetcher, StorageError, StorageErrorKind};

/// Fetches `<scheme>://<path>` from a directory.
#[derive(Debug)]
pub struct VolumeFetcher {
    scheme: String,
    root: PathBuf,
}

impl VolumeFetcher {
    /// A fetcher of `scheme` (lower case) over the directory `root`.
    pub fn new(scheme: &str, root: impl Into<PathBuf>) -> VolumeFetcher {
        VolumeFetcher {
            scheme: scheme.to_ascii_lowercase(),
            root: root.into(),
        }
    }

    fn resolve(&self, uri: &str) -> Result<PathBuf, StorageError> {
        let rest = uri
            .split_once("://")
            .map(|(_, r)| r)
            .ok_or_else(|| StorageError::input(format!("'{uri}' is not a {} URI", self.scheme)))?;
        let root = self
            .root
            .canonicalize()
            .map_err(|e| StorageError::config(format!("volume {}: {e}", self.root.display())))?;
        let path = root
            .join(rest.trim_start_matches('/'))
            .canonicalize()
            .map_err(|e| StorageError::new(StorageErrorKind::NotFound, format!("{uri}: {e}")))?;
        if !path.starts_with(&root) {
            return Err(StorageError::new(
                StorageErrorKind::Unauthorized,
                format!("{uri} leaves the volume"),
            ));
        }
        Ok(path)
    }
}

#[async_trait::async_trait]
impl SegmentFetcher for VolumeFetcher {
    fn scheme(&self) -> &str {
        &self.scheme
    }

    async fn fetch(&self, uri: &str, local: &Path) -> Result<u64, StorageError> {
        let from = self.resolve(uri)?;
        let mut staging = local.as_os_str().to_os_string();
        staging.push(".download");
        let staging = PathBuf::from(staging);
        let io = |what: &str, e: std::io::Error| {
            StorageError::new(StorageErrorKind::Io, format!("{what} for {uri}: {e}"))
        };
        let n = tokio::fs::copy(&from, &staging)
            .await
            .map_err(|e| io("copy", e))?;
        tokio::fs::rename(&staging, local)
            .await
            .map_err(|e| io("rename", e))?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn reads_inside_the_volume_only() {
        let dir = tempfile::tempdir().unwrap();
        let vol = dir.path().join("vol");
        std::fs::create_dir_all(vol.join("a")).unwrap();
        std::fs::write(vol.join("a/x"), b"hi").unwrap();
        std::fs::write(dir.path().join("secret"), b"no").unwrap();
        let f = VolumeFetcher::new("vault", &vol);
        let out = dir.path().join("out");
        assert_eq!(f.fetch("vault://a/x", &out).await.unwrap(), 2);
        assert_eq!(std::fs::read(&out).unwrap(), b"hi");
        let e = f.fetch("vault://a/../../secret", &out).await.unwrap_err();
        assert_eq!(e.kind(), StorageErrorKind::Unauthorized);
        let e = f.fetch("vault://nope", &out).await.unwrap_err();
        assert_eq!(e.kind(), StorageErrorKind::NotFound);
    }
}
