//! Publishing files so that a reader, or the file system after a crash, sees either the old
//! file or the whole new one: write to a sibling staging path, sync it, rename it over the
//! final path, then sync the directory that holds the name.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// `path` with `suffix` appended to its file name (`a/b.seg` + `.tmp` = `a/b.seg.tmp`): a
/// staging path in the same directory, so the final rename stays inside one file system.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// Syncs the directory that holds `path`, so that a rename into it survives a crash of the
/// machine. A no-op where directories cannot be opened for syncing (not Unix).
pub fn sync_parent_dir(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Renames the synced staging file `staging` over `path` and syncs the directory.
pub fn publish(staging: &Path, path: &Path) -> std::io::Result<()> {
    std::fs::rename(staging, path)?;
    sync_parent_dir(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_publish_replaces_and_leaves_no_staging_file() {
        let dir = std::env::temp_dir().join(format!("riffle-fsync-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let path = dir.join("a.seg");
        let staging = with_suffix(&path, ".tmp");
        assert_eq!(staging, dir.join("a.seg.tmp"));
        for content in ["old", "new"] {
            std::fs::write(&staging, content).unwrap_or_else(|e| panic!("{e}"));
            publish(&staging, &path).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                std::fs::read_to_string(&path).ok().as_deref(),
                Some(content)
            );
            assert!(!staging.exists());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
