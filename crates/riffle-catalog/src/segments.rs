//! The catalog's segment records: listing, adding, the commit of a consuming segment with
//! the next one (one transaction), pushed segments, deletion.

use redb::ReadableTable;
use riffle_common::TableNameWithType;

use super::{
    insert_new_segments, read_meta, seg_key, storage, to_json, Catalog, CatalogError, SegmentMeta,
    SegmentStatus, DEAD_LETTERS, SEGMENTS,
};

impl Catalog {
    /// Deletes a committed segment's metadata. A consuming segment cannot be deleted.
    pub fn delete_segment(
        &self,
        name: &TableNameWithType,
        segment: &str,
    ) -> Result<SegmentMeta, CatalogError> {
        let txn = self.db.begin_write().map_err(storage("begin"))?;
        let meta = {
            let mut segs = txn.open_table(SEGMENTS).map_err(storage("open segments"))?;
            let key = seg_key(name, segment);
            let meta = {
                let v = segs
                    .get(key.as_str())
                    .map_err(storage("read segment"))?
                    .ok_or_else(|| {
                        CatalogError::NotFound(format!("segment '{segment}' of '{name}'"))
                    })?;
                read_meta(&key, v.value())?
            };
            if meta.status == SegmentStatus::InProgress {
                return Err(CatalogError::Conflict(format!(
                    "segment '{segment}' is consuming; pause consumption or force a commit first"
                )));
            }
            segs.remove(key.as_str())
                .map_err(storage("delete segment"))?;
            meta
        };
        txn.commit().map_err(storage("commit"))?;
        Ok(meta)
    }

    /// The segments of a table, sorted by name.
    pub fn segments(&self, name: &TableNameWithType) -> Result<Vec<SegmentMeta>, CatalogError> {
        let txn = self.db.begin_read().map_err(storage("begin read"))?;
        let segs = txn.open_table(SEGMENTS).map_err(storage("open segments"))?;
        let prefix = format!("{name}/");
        let mut out = Vec::new();
        for item in segs
            .range(prefix.as_str()..)
            .map_err(storage("list segments"))?
        {
            let (k, v) = item.map_err(storage("list segments"))?;
            if !k.value().starts_with(&prefix) {
                break;
            }
            out.push(read_meta(k.value(), v.value())?);
        }
        Ok(out)
    }

    /// Adds segments (e.g. IN_PROGRESS segments of newly found partitions). An existing
    /// segment of the same name, or a second IN_PROGRESS segment for a partition, is an
    /// error and nothing is written.
    pub fn add_segments(
        &self,
        name: &TableNameWithType,
        metas: &[SegmentMeta],
    ) -> Result<(), CatalogError> {
        let existing = self.segments(name)?;
        let txn = self.db.begin_write().map_err(storage("begin"))?;
        insert_new_segments(&txn, name, &existing, metas)?;
        txn.commit().map_err(storage("commit"))
    }

    /// Commits a segment: `done` (status DONE with its end offset) replaces the IN_PROGRESS
    /// segment of the same name, and `next` (IN_PROGRESS, starting at `done`'s end offset)
    /// is created, in one transaction. Fails without writing anything if the stored segment
    /// is not IN_PROGRESS or the offsets do not chain.
    pub fn commit_segment(
        &self,
        name: &TableNameWithType,
        done: &SegmentMeta,
        next: Option<&SegmentMeta>,
    ) -> Result<(), CatalogError> {
        self.commit_segment_with(name, done, next, None)
    }

    /// [`Catalog::commit_segment`], also writing the segment's dead letters (a JSON array)
    /// in the same transaction.
    pub fn commit_segment_with(
        &self,
        name: &TableNameWithType,
        done: &SegmentMeta,
        next: Option<&SegmentMeta>,
        dead_letters: Option<&str>,
    ) -> Result<(), CatalogError> {
        let end = done.end_offset.as_ref().ok_or_else(|| {
            CatalogError::Conflict(format!("segment '{}' has no end offset", done.segment_name))
        })?;
        if let Some(n) = next {
            if &n.start_offset != end || n.partition != done.partition {
                return Err(CatalogError::Conflict(format!(
                    "next segment '{}' must start at {end} on partition {}",
                    n.segment_name, done.partition
                )));
            }
        }
        let done_json = to_json("segment metadata", done)?;
        let next_json = next.map(|n| to_json("segment metadata", n)).transpose()?;
        let txn = self.db.begin_write().map_err(storage("begin"))?;
        {
            let mut segs = txn.open_table(SEGMENTS).map_err(storage("open segments"))?;
            let key = seg_key(name, &done.segment_name);
            let stored = {
                let v = segs
                    .get(key.as_str())
                    .map_err(storage("read segment"))?
                    .ok_or_else(|| {
                        CatalogError::NotFound(format!("segment '{}'", done.segment_name))
                    })?;
                read_meta(&key, v.value())?
            };
            if stored.status != SegmentStatus::InProgress
                || stored.start_offset != done.start_offset
            {
                return Err(CatalogError::Conflict(format!(
                    "segment '{}' is not the consuming segment starting at {}",
                    done.segment_name, done.start_offset
                )));
            }
            segs.insert(key.as_str(), done_json.as_str())
                .map_err(storage("write segment"))?;
            if let (Some(n), Some(json)) = (next, next_json) {
                segs.insert(seg_key(name, &n.segment_name).as_str(), json.as_str())
                    .map_err(storage("write segment"))?;
            }
            if let Some(dl) = dead_letters {
                let mut t = txn
                    .open_table(DEAD_LETTERS)
                    .map_err(storage("open dead letters"))?;
                t.insert(key.as_str(), dl)
                    .map_err(storage("write dead letters"))?;
            }
        }
        // A crash here leaves nothing: the transaction is not durable until commit returns.
        riffle_common::failpoint("catalog.inside_commit");
        txn.commit().map_err(storage("commit"))
    }

    /// Records a pushed segment (status DONE) in one transaction: a new one when `replaces`
    /// is `None`, else the replacement of the committed segment of the same name whose CRC
    /// is `replaces` (checked here, so two pushes of one name cannot both win). Returns the
    /// record it replaced. A consuming segment is never replaced.
    pub fn put_pushed_segment(
        &self,
        name: &TableNameWithType,
        meta: &SegmentMeta,
        replaces: Option<u32>,
    ) -> Result<Option<SegmentMeta>, CatalogError> {
        if meta.status != SegmentStatus::Done {
            return Err(CatalogError::Conflict(format!(
                "pushed segment '{}' must be DONE",
                meta.segment_name
            )));
        }
        let json = to_json("segment metadata", meta)?;
        let txn = self.db.begin_write().map_err(storage("begin"))?;
        let previous = {
            let mut segs = txn.open_table(SEGMENTS).map_err(storage("open segments"))?;
            let key = seg_key(name, &meta.segment_name);
            let stored = match segs.get(key.as_str()).map_err(storage("read segment"))? {
                Some(v) => Some(read_meta(&key, v.value())?),
                None => None,
            };
            match (&stored, replaces) {
                (None, None) => {}
                (Some(s), Some(crc)) if s.is_done() && s.crc == Some(crc) => {}
                (Some(_), _) => {
                    return Err(CatalogError::Conflict(format!(
                        "segment '{}' of '{name}' changed while it was being pushed; push again",
                        meta.segment_name
                    )))
                }
                (None, Some(_)) => {
                    return Err(CatalogError::Conflict(format!(
                    "segment '{}' of '{name}' was deleted while it was being replaced; push again",
                    meta.segment_name
                )))
                }
            }
            segs.insert(key.as_str(), json.as_str())
                .map_err(storage("write segment"))?;
            stored
        };
        riffle_common::failpoint("catalog.inside_push");
        txn.commit().map_err(storage("commit"))?;
        Ok(previous)
    }

    /// The raw JSON text stored for a segment (for the golden-format tests and debugging).
    pub fn segment_record(
        &self,
        name: &TableNameWithType,
        segment: &str,
    ) -> Result<Option<String>, CatalogError> {
        self.get(SEGMENTS, &seg_key(name, segment))
    }
}
