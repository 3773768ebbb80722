//! Segments: listing, deletion, and retention (committed segments whose newest row is older
//! than the table's `retentionTimeUnit` / `retentionTimeValue` are deleted).

use riffle_catalog::{SegmentMeta, SegmentStatus};
use riffle_common::{now_ms, TableNameWithType};
use tracing::{info, warn};

use crate::error::ControllerError;
use crate::tables::TableManager;

type Result<T> = std::result::Result<T, ControllerError>;

impl TableManager {
    /// The segments of a table, sorted by name.
    pub async fn segments(&self, name: &TableNameWithType) -> Result<Vec<SegmentMeta>> {
        let n = name.clone();
        self.ctx.store.run(move |c| c.segments(&n)).await
    }

    /// Deletes a committed segment: catalog first (queries and restarts stop seeing it),
    /// then this server's copy and the deep store's.
    pub async fn delete_segment(
        &self,
        name: &TableNameWithType,
        segment: &str,
    ) -> Result<SegmentMeta> {
        let (n, s) = (name.clone(), segment.to_string());
        let meta = self
            .ctx
            .store
            .run(move |c| c.delete_segment(&n, &s))
            .await?;
        self.ctx.server.drop_segment(name, segment);
        // A segment pushed by URI stays where its owner keeps it.
        if let Some(uri) = meta
            .download_url
            .as_ref()
            .filter(|u| self.ctx.deep_store.contains(u))
        {
            if let Err(e) = self.ctx.deep_store.delete(uri).await {
                warn!(table = %name, segment, error = %e,
                      "cannot delete the deep-store copy; it is removed at the next start");
            }
        }
        self.refresh_time_boundary(name.raw()).await;
        info!(table = %name, segment, "segment deleted");
        Ok(meta)
    }

    /// Deletes, for every table, the committed segments past the table's retention.
    /// Segments without a time range are kept (Pinot does the same). Returns the segments
    /// deleted.
    pub async fn enforce_retention(&self) -> Vec<String> {
        let mut deleted = Vec::new();
        let names = match self.table_names().await {
            Ok(n) => n,
            Err(e) => {
                warn!(error = %e, "retention: cannot list tables");
                return deleted;
            }
        };
        let now = now_ms();
        for name in names {
            let Ok(Some(cfg)) = self.table(&name).await else {
                continue;
            };
            self.dead_letter_retention(&name, &cfg, now).await;
            let Some(retention) = cfg.retention() else {
                continue;
            };
            let Ok(segments) = self.segments(&name).await else {
                continue;
            };
            for m in segments {
                if m.status != SegmentStatus::Done {
                    continue;
                }
                let Some(end) = m.end_time_ms else { continue };
                if end >= now - retention.ms {
                    continue;
                }
                match self.delete_segment(&name, &m.segment_name).await {
                    Ok(_) => {
                        info!(table = %name, segment = %m.segment_name, "segment past retention deleted");
                        deleted.push(m.segment_name);
                    }
                    Err(e) => warn!(table = %name, segment = %m.segment_name, error = %e,
                                    "retention: cannot delete segment"),
                }
            }
        }
        deleted
    }

    /// Deletes committed dead letters past the dead-letter retention of the table's streams
    /// (a segment's dead letters go when its newest one is older).
    async fn dead_letter_retention(
        &self,
        name: &TableNameWithType,
        cfg: &riffle_config::TableConfig,
        now: i64,
    ) {
        let Some(keep_ms) = cfg
            .streams()
            .iter()
            .filter_map(|s| s.dead_letter.as_ref().map(|d| d.retention_ms))
            .max()
        else {
            return;
        };
        let n = name.clone();
        let Ok(all) = self.ctx.store.run(move |c| c.dead_letters(&n)).await else {
            return;
        };
        for (segment, json) in all {
            let newest = serde_json::from_str::<Vec<serde_json::Value>>(&json)
                .ok()
                .and_then(|v| {
                    v.iter()
                        .filter_map(|d| d.get("time_ms").and_then(serde_json::Value::as_i64))
                        .max()
                })
                .unwrap_or(0);
            if newest >= now - keep_ms {
                continue;
            }
            let (n, s) = (name.clone(), segment.clone());
            match self
                .ctx
                .store
                .run(move |c| c.delete_dead_letters(&n, &s))
                .await
            {
                Ok(_) => {
                    self.ctx.server.drop_dead_letters(name, &segment);
                    info!(table = %name, segment = %segment, "dead letters past retention deleted");
                }
                Err(e) => warn!(table = %name, segment = %segment, error = %e,
                                "retention: cannot delete dead letters"),
            }
        }
    }

    /// Committed segments of a table that this server could not load, with why.
    pub fn load_errors(
        &self,
        name: &TableNameWithType,
    ) -> std::collections::BTreeMap<String, String> {
        self.ctx.server.load_errors(name)
    }
}
