//! Committed segments when a table starts on this server: the local copy when its CRC
//! matches the catalog's, else a fresh copy from the deep store (Pinot's segment fetcher);
//! local files no committed segment references are removed first.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use riffle_catalog::SegmentMeta;
use riffle_config::LoadMode;
use riffle_segment::sealed::SealedSegment;
use riffle_segment::tarball;
use riffle_segment::TableColumns;
use tracing::{info, warn};

use crate::context::ServerContext;
use crate::table::TableRuntime;

/// Loads a committed segment; `Ok(None)` for a segment without rows (it has no file).
pub(crate) async fn load_committed(
    ctx: &ServerContext,
    rt: &TableRuntime,
    meta: &SegmentMeta,
) -> Result<Option<SealedSegment>, String> {
    if meta.total_docs.unwrap_or(0) == 0 {
        return Ok(None);
    }
    let name = meta.segment_name.clone();
    let path = rt.segment_path(ctx, &name);
    let Some(crc) = meta.crc else {
        return Err(format!("segment {name} has no CRC in the catalog"));
    };
    let open = |path: std::path::PathBuf| {
        let (name, columns, mode) = (name.clone(), rt.spec().columns.clone(), rt.spec().load_mode);
        ctx.cpu
            .run(move || open_if_intact(&path, &name, crc, columns, mode))
    };
    match open(path.clone()).await {
        Ok(Ok(seg)) => return Ok(Some(seg)),
        Ok(Err(why)) => {
            warn!(table = %rt.name, segment = %name, reason = %why,
                  "local copy unusable; downloading from the deep store");
        }
        Err(e) => return Err(format!("load task failed: {e}")),
    }
    let recorded = meta
        .download_url
        .as_deref()
        .ok_or_else(|| format!("segment {name} has no download URL in the catalog"))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    download(ctx, rt, &name, recorded, &path).await?;
    open(path)
        .await
        .map_err(|e| format!("load task failed: {e}"))?
        .map(Some)
        .map_err(|why| format!("the deep store's copy of segment {name} is unusable too: {why}"))
}

/// Downloads a segment from the URI the catalog recorded, or, when that fails, from where
/// the deep store the server uses now keeps a segment of that name (a data directory or a
/// bucket that moved).
async fn download(
    ctx: &ServerContext,
    rt: &TableRuntime,
    name: &str,
    recorded: &str,
    path: &Path,
) -> Result<(), String> {
    let first = match fetch_segment(ctx, recorded, path).await {
        Ok(()) => return Ok(()),
        Err(e) => format!("download of segment {name} from {}: {e}", recorded),
    };
    let current = ctx
        .deep_store
        .segment_uri(&rt.name.to_string(), name)
        .map_err(|e| format!("{first}; {e}"))?;
    if current == recorded {
        return Err(first);
    }
    match ctx.deep_store.download(&current, path).await {
        Ok(_) => {
            info!(table = %rt.name, segment = %name, recorded, uri = %current,
                  "segment downloaded from the current deep store");
            Ok(())
        }
        Err(e) => Err(format!(
            "{first}; from {current}: {}",
            riffle_common::chain(&e)
        )),
    }
}

/// Fetches the segment at `uri` (by its scheme) to `path`: a segment file as it is, a
/// segment tar (a push that named its tar) unpacked. `path` is whole or absent.
pub(crate) async fn fetch_segment(
    ctx: &ServerContext,
    uri: &str,
    path: &Path,
) -> Result<(), String> {
    let fetched = path.with_extension("fetch");
    ctx.fetchers
        .fetch(uri, &fetched)
        .await
        .map_err(|e| riffle_common::chain(&e))?;
    let (from, to, what) = (fetched.clone(), path.to_path_buf(), uri.to_string());
    let unpacked = ctx
        .cpu
        .run(move || -> Result<(), String> {
            let tar =
                tarball::is_tar(&from).map_err(|e| format!("read {}: {e}", from.display()))?;
            if tar {
                let out = to.with_extension("unpack");
                let r = tarball::read_tar(&from, &what, Some(&out)).map_err(|e| e.to_string());
                let _ = std::fs::remove_file(&from);
                r?;
                std::fs::rename(&out, &to).map_err(|e| format!("rename {}: {e}", out.display()))
            } else {
                std::fs::rename(&from, &to).map_err(|e| format!("rename {}: {e}", from.display()))
            }
        })
        .await
        .map_err(|e| format!("unpack task failed: {e}"))?;
    if unpacked.is_err() {
        let _ = std::fs::remove_file(&fetched);
    }
    unpacked
}

fn open_if_intact(
    path: &Path,
    name: &str,
    crc: u32,
    columns: Arc<TableColumns>,
    mode: LoadMode,
) -> Result<SealedSegment, String> {
    if !path.is_file() {
        return Err(format!("{} is missing", path.display()));
    }
    // Opening checks every section and computes the whole file's CRC in one pass.
    let seg = SealedSegment::open(path, name, columns, mode).map_err(|e| e.to_string())?;
    let actual = seg.file_crc();
    if actual != crc {
        return Err(format!(
            "{} has CRC {actual}, the catalog says {crc}",
            path.display()
        ));
    }
    Ok(seg)
}

/// Removes the files of a table's directory that no committed segment references: files
/// of segments that never committed (a crash between seal and commit) and staging files.
/// Runs before the table's partitions start, so no seal is in flight.
pub(crate) fn remove_local_orphans(rt: &TableRuntime, dir: &Path, committed: &[SegmentMeta]) {
    let keep: HashSet<String> = committed
        .iter()
        .map(|m| format!("{}.seg", m.segment_name))
        .collect();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().to_string();
        if keep.contains(&file) {
            continue;
        }
        match std::fs::remove_file(e.path()) {
            Ok(()) => {
                info!(table = %rt.name, file = %file, "removed uncommitted local segment file")
            }
            Err(err) => warn!(table = %rt.name, file = %file, error = %err,
                              "cannot remove uncommitted local segment file"),
        }
    }
}
