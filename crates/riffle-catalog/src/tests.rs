use super::*;

use riffle_common::StreamOffset;

fn name() -> TableNameWithType {
    TableNameWithType::parse("t_REALTIME").unwrap()
}

fn meta(seg: &str, p: u32, seq: u32, start: i64) -> SegmentMeta {
    SegmentMeta::in_progress(&name(), seg.into(), p, seq, StreamOffset::Long(start), 1)
}

fn schema() -> Schema {
    Schema::from_json(
        br#"{"schemaName":"t","dimensionFieldSpecs":[{"name":"a","dataType":"INT"}],
             "dateTimeFieldSpecs":[{"name":"ts","dataType":"LONG","format":"1:MILLISECONDS:EPOCH","granularity":"1:MILLISECONDS"}]}"#,
    )
    .unwrap()
}

fn table() -> TableConfig {
    TableConfig::from_json(
        br#"{"tableName":"t","tableType":"REALTIME","segmentsConfig":{"timeColumnName":"ts"},"tenants":{},
             "tableIndexConfig":{"streamConfigs":{"streamType":"file","stream.file.topic.name":"t",
             "stream.file.decoder.class.name":"org.apache.pinot.plugin.inputformat.json.JSONMessageDecoder"}}}"#,
    )
    .unwrap()
}

#[test]
fn test_table_lifecycle_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.redb");
    let raw = TableName::parse("t").unwrap();
    {
        let c = Catalog::open(&path).unwrap();
        c.put_schema(&raw, &schema(), false).unwrap();
        assert!(matches!(
            c.put_schema(&raw, &schema(), false),
            Err(CatalogError::AlreadyExists(_))
        ));
        c.create_table(&table(), None, &[meta("t__0__0__x", 0, 0, 5)])
            .unwrap();
        assert!(matches!(
            c.create_table(&table(), None, &[]),
            Err(CatalogError::AlreadyExists(_))
        ));
        assert!(matches!(
            c.delete_schema(&raw),
            Err(CatalogError::Conflict(_))
        ));
    }
    let c = Catalog::open(&path).unwrap();
    assert_eq!(c.table(&name()).unwrap(), Some(table()));
    assert_eq!(
        c.schema(&raw).unwrap().map(|s| s.to_json()),
        Some(schema().to_json())
    );
    assert_eq!(c.table_names().unwrap(), (vec![name()], vec![]));
    let segs = c.segments(&name()).unwrap();
    assert_eq!(segs.len(), 1);
    assert_eq!(segs[0].start_offset, StreamOffset::Long(5));
    assert!(matches!(
        c.add_segments(&name(), &[meta("t__0__1__x", 0, 1, 9)]),
        Err(CatalogError::Conflict(_))
    ));
    c.add_segments(&name(), &[meta("t__1__0__x", 1, 0, 0)])
        .unwrap();
    assert_eq!(c.segments(&name()).unwrap().len(), 2);
    c.delete_table(&name()).unwrap();
    assert!(c.segments(&name()).unwrap().is_empty());
    c.delete_schema(&raw).unwrap();
}

#[test]
fn test_commit_chains_offsets_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let c = Catalog::open(&dir.path().join("c.redb")).unwrap();
    c.create_table(&table(), None, &[meta("s0", 0, 0, 0)])
        .unwrap();
    let mut done = meta("s0", 0, 0, 0);
    done.status = SegmentStatus::Done;
    done.end_offset = Some(StreamOffset::Long(10));
    // A next segment that does not start at the end offset is refused, nothing written.
    assert!(c
        .commit_segment(&name(), &done, Some(&meta("s1", 0, 1, 11)))
        .is_err());
    assert_eq!(
        c.segments(&name()).unwrap()[0].status,
        SegmentStatus::InProgress
    );
    c.commit_segment(&name(), &done, Some(&meta("s1", 0, 1, 10)))
        .unwrap();
    let segs = c.segments(&name()).unwrap();
    assert_eq!(segs[0].status, SegmentStatus::Done);
    assert_eq!(segs[1].start_offset, StreamOffset::Long(10));
    // Committing twice is refused.
    assert!(c.commit_segment(&name(), &done, None).is_err());
}

/// The records of `tests/data/golden_records.json` were written by an earlier version (a
/// consuming segment, a committed one with every commit fact, a table's pause state): each
/// reads into its type and writes back as exactly the same text, so the stored format
/// cannot drift without this test noticing.
#[test]
fn test_records_read_and_write_back_as_the_golden_text() {
    let path =
        // The directory cargo runs the test in (a build reused from another checkout keeps
        // the compile-time path).
        std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())).join("tests/data/golden_records.json");
    let golden: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let mut checked = 0;
    for rec in golden["segments"].as_array().unwrap() {
        let text = rec.as_str().unwrap();
        let meta: SegmentMeta = serde_json::from_str(text).unwrap();
        assert!(
            meta.extra.is_empty(),
            "a known key went to extra: {:?}",
            meta.extra
        );
        assert_eq!(serde_json::to_string(&meta).unwrap(), text);
        if meta.is_done() {
            assert!(meta.crc.is_some() && meta.download_url.is_some(), "{text}");
            assert!(
                meta.stop_reason.is_some() && meta.autotune.is_some(),
                "{text}"
            );
        }
        checked += 1;
    }
    for rec in golden["tableStates"].as_array().unwrap() {
        let text = rec.as_str().unwrap();
        let state: TableState = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string(&state).unwrap(), text);
        checked += 1;
    }
    for rec in golden["tables"].as_array().unwrap() {
        let text = rec.as_str().unwrap();
        let t = TableConfig::from_json(text.as_bytes()).unwrap();
        assert_eq!(serde_json::to_string(&t.to_json()).unwrap(), text);
        checked += 1;
    }
    assert!(checked >= 5, "{checked}");
    // Unknown keys of a newer version survive a read and a write.
    let newer = golden["segments"][0]
        .as_str()
        .unwrap()
        .replacen('{', "{\"zNewKey\":[1],", 1);
    let meta: SegmentMeta = serde_json::from_str(&newer).unwrap();
    assert_eq!(meta.extra.get("zNewKey"), Some(&serde_json::json!([1])));
    assert!(serde_json::to_string(&meta)
        .unwrap()
        .contains("\"zNewKey\":[1]"));
}

#[test]
fn test_a_corrupt_record_names_itself() {
    let dir = tempfile::tempdir().unwrap();
    let c = Catalog::open(&dir.path().join("c.redb")).unwrap();
    c.create_table(&table(), None, &[]).unwrap();
    let txn = c.db.begin_write().unwrap();
    {
        let mut segs = txn.open_table(SEGMENTS).unwrap();
        segs.insert("t_REALTIME/bad", "{not json").unwrap();
    }
    txn.commit().unwrap();
    let e = c.segments(&name()).unwrap_err();
    assert_eq!(e.error_kind(), ErrorKind::Corrupt);
    assert!(riffle_common::chain(&e).contains("t_REALTIME/bad"), "{e}");
}

#[test]
fn a_pushed_segment_is_new_or_replaces_the_one_whose_crc_was_read() {
    let dir = tempfile::tempdir().unwrap();
    let c = Catalog::open(&dir.path().join("catalog.redb")).unwrap();
    let off = TableNameWithType::parse("t_OFFLINE").unwrap();
    let pushed = |crc: u32| {
        SegmentMeta::pushed(
            &off,
            Pushed {
                segment_name: "s".into(),
                creation_time_ms: 1,
                total_docs: 3,
                crc,
                download_url: format!("file:///d/t_OFFLINE/s.{crc}"),
                size_bytes: 10,
                start_time_ms: Some(5),
                end_time_ms: Some(9),
            },
            7,
        )
    };
    assert_eq!(c.put_pushed_segment(&off, &pushed(1), None).unwrap(), None);
    // A second "new" push of the name, or a replacement of a CRC no longer stored, loses.
    assert!(matches!(
        c.put_pushed_segment(&off, &pushed(2), None),
        Err(CatalogError::Conflict(_))
    ));
    assert!(matches!(
        c.put_pushed_segment(&off, &pushed(2), Some(9)),
        Err(CatalogError::Conflict(_))
    ));
    let old = c.put_pushed_segment(&off, &pushed(2), Some(1)).unwrap();
    assert_eq!(old.and_then(|m| m.crc), Some(1));
    let segs = c.segments(&off).unwrap();
    assert_eq!(segs.len(), 1);
    assert_eq!(segs[0].crc, Some(2));
    assert!(segs[0].is_done());
    assert_eq!(segs[0].push_time_ms, Some(7));
}
