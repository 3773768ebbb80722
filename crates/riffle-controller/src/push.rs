//! Pushed segments: segments built outside the server (a push job, `riffle CreateSegment`)
//! that land in an OFFLINE table by tar upload, by URI or by metadata push; and the time
//! boundary of a hybrid table (one name, OFFLINE and REALTIME).
//!
//! A push is checked before anything changes: the table exists and is OFFLINE, the tar was
//! built for it, the segment file opens with the table's columns (every section's
//! checksum) and its CRC is the tar's. Then, in order: the file goes to the deep store
//! (unless the push named where it stays), one catalog transaction records it (new, or
//! replacing the segment of that name whose CRC was read before), and the server swaps it
//! in for queries. A failure before the catalog transaction changes nothing; after it, the
//! catalog is the truth and a restart loads what it says.

use std::path::PathBuf;

use riffle_catalog::{Pushed, SegmentMeta};
use riffle_common::{split_table_name, ErrorKind, TableName, TableNameWithType, TableType};
use riffle_segment::tarball::{self, TarMeta};
use riffle_segment::SealedSegment;
use tracing::{info, warn};

use crate::error::ControllerError;
use crate::tables::TableManager;

type Result<T> = std::result::Result<T, ControllerError>;

/// One segment to push.
#[derive(Debug)]
pub struct PushRequest {
    /// The OFFLINE table.
    pub table: TableNameWithType,
    /// The segment file, unpacked into the staging directory (see
    /// [`TableManager::staging_path`]); moved or removed by the push.
    pub staged: PathBuf,
    /// What the tar said.
    pub tar: TarMeta,
    /// Where the segment stays (a URI or metadata push without a copy to the deep store);
    /// `None` copies it into the deep store.
    pub download_url: Option<String>,
    /// A segment of the same name may be replaced (Pinot's `allowRefresh`, default true).
    pub allow_refresh: bool,
}

/// What a push did.
#[derive(Clone, Debug, PartialEq)]
pub struct PushOutcome {
    /// The table, with its type.
    pub table: TableNameWithType,
    /// The segment.
    pub segment: String,
    /// A segment of that name was replaced.
    pub replaced: bool,
    /// A segment of that name with the same CRC was there already: nothing changed.
    pub unchanged: bool,
}

impl TableManager {
    /// A fresh path in the staging directory (removed at start); `what` ends its name.
    pub fn staging_path(&self, what: &str) -> Result<PathBuf> {
        let dir = &self.ctx.staging_dir;
        std::fs::create_dir_all(dir).map_err(|e| {
            ControllerError::new(ErrorKind::Io, format!("create {}: {e}", dir.display()))
        })?;
        Ok(dir.join(format!("{}-{what}", uuid::Uuid::new_v4().simple())))
    }

    /// Empties the staging directory (at node start: nothing is pushed then).
    pub fn clear_staging(&self) {
        let _ = std::fs::remove_dir_all(&self.ctx.staging_dir);
    }

    /// Unpacks a segment tar in the staging directory: its metadata and the segment file.
    /// A tar that is not a Riffle segment tar is a bad request.
    pub async fn unpack_tar(&self, tar: PathBuf, what: &str) -> Result<(PathBuf, TarMeta)> {
        let out = self.staging_path("segment")?;
        let (o, w) = (out.clone(), what.to_string());
        let read = self
            .ctx
            .server
            .context()
            .cpu
            .run(move || tarball::read_tar(&tar, &w, Some(&o)))
            .await?;
        match read {
            Ok(meta) => Ok((out, meta)),
            Err(e) => {
                let _ = std::fs::remove_file(&out);
                Err(ControllerError::wrap("Invalid segment tar", e)
                    .with_kind(ErrorKind::BadRequest))
            }
        }
    }

    /// Fetches a segment tar (or segment file) named by URI into the staging directory and
    /// unpacks it. A URI that cannot be fetched is a bad request naming it.
    pub async fn fetch_for_push(&self, uri: &str) -> Result<(PathBuf, TarMeta)> {
        let fetched = self.staging_path("fetched")?;
        let got = self.ctx.fetchers.fetch(uri, &fetched).await;
        if let Err(e) = got {
            let _ = std::fs::remove_file(&fetched);
            // The request named a URI this server cannot read: the request's fault (400),
            // even when the source is only down for now.
            return Err(ControllerError::wrap("Cannot fetch the segment", e)
                .with_kind(ErrorKind::BadRequest));
        }
        let unpacked = self.unpack_tar(fetched.clone(), uri).await;
        let _ = std::fs::remove_file(&fetched);
        unpacked
    }

    /// Fetches any file by URI into `local` (a file to ingest); a URI that cannot be fetched
    /// is a bad request naming it.
    pub async fn fetch_file(&self, uri: &str, local: &std::path::Path) -> Result<u64> {
        self.ctx.fetchers.fetch(uri, local).await.map_err(|e| {
            ControllerError::wrap("Cannot fetch the file", e).with_kind(ErrorKind::BadRequest)
        })
    }

    /// Pushes one segment (see the module documentation). The staged file is consumed.
    pub async fn push_segment(&self, req: PushRequest) -> Result<PushOutcome> {
        let staged = req.staged.clone();
        let out = self.push_checked(req).await;
        let _ = std::fs::remove_file(&staged);
        out
    }

    async fn push_checked(&self, req: PushRequest) -> Result<PushOutcome> {
        let name = req.table.clone();
        let segment = req.tar.segment_name.clone();
        let spec = self.check_request(&req)?;
        let _held = self.push_lock.lock().await;
        let seg = self.open_pushed(&req, &spec).await?;
        let existing = self
            .segments(&name)
            .await?
            .into_iter()
            .find(|m| m.segment_name == segment);
        if let Some(old) = &existing {
            if old.crc == Some(seg.file_crc()) {
                info!(table = %name, segment, "pushed segment is the one stored; nothing changed");
                return Ok(PushOutcome {
                    table: name,
                    segment,
                    replaced: false,
                    unchanged: true,
                });
            }
            if !req.allow_refresh {
                return Err(ControllerError::new(
                    ErrorKind::Conflict,
                    format!("Segment: {segment} already exists in table: {name}. Refresh not permitted."),
                ));
            }
        }
        self.check_not_realtime(&name, &segment).await?;
        let info = seg.info().clone();
        let crc = seg.file_crc();
        drop(seg);
        let url = self.record(&req, &info, crc, existing.as_ref()).await?;
        riffle_common::failpoint("push.after_record");
        if let Err(e) = self
            .ctx
            .server
            .install_pushed(&name, &segment, &req.staged)
            .await
        {
            warn!(table = %name, segment, error = %e, "pushed segment recorded but not loaded; a restart loads it");
            return Err(ControllerError::new(
                ErrorKind::Internal,
                format!("segment {segment} was recorded but could not be loaded: {e}"),
            ));
        }
        if let Some(old_url) = existing.as_ref().and_then(|e| e.download_url.clone()) {
            if old_url != url && self.ctx.deep_store.contains(&old_url) {
                if let Err(e) = self.ctx.deep_store.delete(&old_url).await {
                    warn!(table = %name, segment, error = %e, "cannot delete the replaced deep-store copy; removed at the next start");
                }
            }
        }
        self.refresh_time_boundary(name.raw()).await;
        info!(table = %name, segment, rows = info.total_docs, replaced = existing.is_some(), "segment pushed");
        Ok(PushOutcome {
            table: name,
            segment,
            replaced: existing.is_some(),
            unchanged: false,
        })
    }

    /// What can be refused before anything is read: the name, the table and its type, the
    /// table the tar was built for. Returns the table's spec.
    fn check_request(&self, req: &PushRequest) -> Result<std::sync::Arc<riffle_ingest::TableSpec>> {
        let name = &req.table;
        let segment = &req.tar.segment_name;
        riffle_common::check_segment_name(segment).map_err(ControllerError::bad_request)?;
        if name.table_type() != TableType::Offline {
            return Err(ControllerError::bad_request(format!(
                "segments are pushed to OFFLINE tables; {name} is a REALTIME table"
            )));
        }
        let spec =
            self.ctx.server.spec(name).ok_or_else(|| {
                ControllerError::bad_request(format!("Failed to find table: {name}"))
            })?;
        let (built_for, _) = split_table_name(&req.tar.table_name);
        if built_for != name.raw().as_str() {
            return Err(ControllerError::bad_request(format!(
                "segment {segment} was built for table '{}', not {name}",
                req.tar.table_name
            )));
        }
        Ok(spec)
    }

    /// Stores the segment (in the deep store unless the push keeps it where it is) and
    /// records it in one catalog transaction; returns its download URL.
    async fn record(
        &self,
        req: &PushRequest,
        info: &riffle_segment::SegmentInfo,
        crc: u32,
        existing: Option<&SegmentMeta>,
    ) -> Result<String> {
        let (name, segment) = (&req.table, &req.tar.segment_name);
        let size = std::fs::metadata(&req.staged).map(|m| m.len()).unwrap_or(0);
        let url = match &req.download_url {
            Some(u) => u.clone(),
            None => {
                // A replacement goes under a new key, so the committed object stays whole
                // until the catalog names the new one.
                let object = match existing {
                    Some(_) => format!("{segment}.{crc:08x}"),
                    None => segment.clone(),
                };
                self.ctx
                    .deep_store
                    .upload(&req.staged, &name.to_string(), &object)
                    .await?
            }
        };
        riffle_common::failpoint("push.after_upload");
        let facts = Pushed {
            segment_name: segment.clone(),
            creation_time_ms: req.tar.creation_time_ms,
            total_docs: info.total_docs,
            crc,
            download_url: url.clone(),
            size_bytes: size,
            start_time_ms: info.start_time_ms,
            end_time_ms: info.end_time_ms,
        };
        let now = riffle_common::now_ms();
        let mut meta = SegmentMeta::pushed(name, facts, now);
        if let Some(old) = existing {
            meta.push_time_ms = old.push_time_ms.or(Some(now));
            meta.refresh_time_ms = Some(now);
        }
        let (n, replaces) = (name.clone(), existing.and_then(|e| e.crc));
        self.ctx
            .store
            .run(move |c| c.put_pushed_segment(&n, &meta, replaces))
            .await?;
        Ok(url)
    }

    /// Opens the staged segment with the table's columns: its checksums, its CRC against the
    /// tar's, and its columns against the table's (same names must have the same types).
    async fn open_pushed(
        &self,
        req: &PushRequest,
        spec: &riffle_ingest::TableSpec,
    ) -> Result<SealedSegment> {
        let (path, name, columns) = (
            req.staged.clone(),
            req.tar.segment_name.clone(),
            spec.columns.clone(),
        );
        let seg = self
            .ctx
            .server
            .context()
            .cpu
            .run(move || SealedSegment::open(&path, &name, columns, riffle_config::LoadMode::Mmap))
            .await?
            .map_err(|e| {
                ControllerError::wrap("Invalid segment", e).with_kind(ErrorKind::BadRequest)
            })?;
        let segment = &req.tar.segment_name;
        if seg.file_crc() != req.tar.crc {
            return Err(ControllerError::bad_request(format!(
                "segment {segment}: the file's CRC is {}, its creation.meta says {}",
                seg.file_crc(),
                req.tar.crc
            )));
        }
        for c in &seg.info().columns {
            let Some(t) = spec.columns.columns.iter().find(|t| t.name == c.name) else {
                return Err(ControllerError::bad_request(format!(
                    "segment {segment} has column '{}', which table {} does not have: was it built for another table?",
                    c.name, req.table
                )));
            };
            if t.data_type.name() != c.data_type || t.single_value != c.single_value {
                return Err(ControllerError::bad_request(format!(
                    "segment {segment}: column '{}' is {} there and {} in table {}",
                    c.name,
                    c.data_type,
                    t.data_type.name(),
                    req.table
                )));
            }
        }
        Ok(seg)
    }

    async fn check_not_realtime(&self, name: &TableNameWithType, segment: &str) -> Result<()> {
        let rt = name.raw().with_type(TableType::Realtime);
        if self.table(&rt).await?.is_some()
            && self
                .segments(&rt)
                .await?
                .iter()
                .any(|m| m.segment_name == segment)
        {
            return Err(ControllerError::new(
                ErrorKind::Conflict,
                format!("segment name {segment} is taken by a segment of {rt}; name the pushed segment differently"),
            ));
        }
        Ok(())
    }

    /// Recomputes a table's hybrid time boundary (Pinot's): with both an OFFLINE and a
    /// REALTIME table of this name, the largest end time of the OFFLINE segments with rows,
    /// minus one day (one hour when the OFFLINE table's push frequency is HOURLY and its
    /// time column does not count days), in the time column's unit. Queries then read
    /// OFFLINE rows at or before it and REALTIME rows after it. No boundary otherwise.
    pub async fn refresh_time_boundary(&self, raw: &TableName) {
        let off = raw.with_type(TableType::Offline);
        let realtime = raw.with_type(TableType::Realtime);
        let Some(data) = self
            .ctx
            .server
            .table_data(&off)
            .or_else(|| self.ctx.server.table_data(&realtime))
        else {
            return;
        };
        let boundary = match (self.ctx.server.spec(&off), self.ctx.server.hosts(&realtime)) {
            (Some(spec), true) => match self.segments(&off).await {
                Ok(segs) => time_boundary(&spec, &segs),
                Err(e) => {
                    warn!(table = %raw, error = %e, "cannot read OFFLINE segments; time boundary kept");
                    return;
                }
            },
            _ => None,
        };
        if data.time_boundary() != boundary {
            info!(table = %raw, boundary = ?boundary, "hybrid time boundary");
        }
        data.set_time_boundary(boundary);
    }
}

/// Pinot's time boundary for an OFFLINE table's segments, in its time column's unit.
pub fn time_boundary(spec: &riffle_ingest::TableSpec, segments: &[SegmentMeta]) -> Option<i64> {
    let time = spec.config.time_column()?;
    let column = spec.columns.columns.iter().find(|c| c.name == time)?;
    let max_end = segments
        .iter()
        .filter(|m| m.is_done() && m.total_docs.unwrap_or(0) > 0)
        .filter_map(|m| m.end_time_ms)
        .filter(|t| *t > 0)
        .max()?;
    let hourly = push_frequency(&spec.config).is_some_and(|f| f.eq_ignore_ascii_case("HOURLY"));
    let days = column.format.as_ref().is_some_and(|f| f.is_days());
    let offset = if hourly && !days {
        3_600_000
    } else {
        86_400_000
    };
    let ms = max_end - offset;
    match column.data_type {
        riffle_config::DataType::Timestamp => Some(ms),
        _ => column.format.as_ref()?.millis_to_epoch(ms),
    }
}

/// `ingestionConfig.batchIngestionConfig.segmentIngestionFrequency`, or the legacy
/// `segmentsConfig.segmentPushFrequency`.
fn push_frequency(cfg: &riffle_config::TableConfig) -> Option<String> {
    let doc = cfg.to_json();
    doc.pointer("/ingestionConfig/batchIngestionConfig/segmentIngestionFrequency")
        .or_else(|| doc.pointer("/segmentsConfig/segmentPushFrequency"))
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

impl TableManager {
    /// Builds one segment from a small file (Pinot's `/ingestFromFile` and
    /// `/ingestFromURI`) with the table's transforms and filter, and pushes it. `configs`
    /// are the record reader's (`batchConfigMapStr`'s `recordReader.prop.*` keys, without
    /// the prefix). The segment is named `<table>_<epoch ms>`.
    pub async fn ingest_file(
        &self,
        table: &TableNameWithType,
        file: PathBuf,
        format: riffle_decode::readers::FileFormat,
        configs: std::collections::BTreeMap<String, String>,
    ) -> Result<PushOutcome> {
        if table.table_type() != TableType::Offline {
            return Err(ControllerError::bad_request(format!(
                "files are ingested into OFFLINE tables; {table} is a REALTIME table"
            )));
        }
        let spec = self.ctx.server.spec(table).ok_or_else(|| {
            ControllerError::bad_request(format!("Failed to find table: {table}"))
        })?;
        let now = riffle_common::now_ms();
        let name = format!("{}_{now}", table.raw());
        let out_dir = self.staging_path("build")?;
        std::fs::create_dir_all(&out_dir).map_err(|e| {
            ControllerError::new(ErrorKind::Io, format!("create {}: {e}", out_dir.display()))
        })?;
        let input = riffle_ingest::segment_build::SegmentInput {
            file,
            format,
            name,
            simple_name: None,
        };
        let (s, dir) = (spec.clone(), out_dir.clone());
        let built = self
            .ctx
            .server
            .context()
            .cpu
            .run(move || {
                let progress = riffle_ingest::segment_build::BuildProgress::default();
                riffle_ingest::segment_build::build_segment(&s, &input, &configs, &dir, &progress)
            })
            .await?;
        let built = match built {
            Ok(b) => b,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&out_dir);
                return Err(ControllerError::bad_request(format!(
                    "Cannot ingest the file: {e}"
                )));
            }
        };
        let tar = TarMeta::of_sealed(
            table.raw().as_str(),
            &built.file,
            spec.config.time_column(),
            now,
        );
        let out = self
            .push_segment(PushRequest {
                table: table.clone(),
                staged: built.path.clone(),
                tar,
                download_url: None,
                allow_refresh: true,
            })
            .await;
        let _ = std::fs::remove_dir_all(&out_dir);
        out
    }
}
