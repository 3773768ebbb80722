//! DeepStore against a local directory and against a real S3 server (moto, started per
//! test by `S3Server`; install it with `scripts/moto.sh`).

use std::collections::{BTreeMap, HashSet};
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStoreExt;
use riffle_common::{ClassifyError, ErrorKind};
use riffle_storage::testing::{free_port, S3Server};
use riffle_storage::{DeepStore, StorageError, StorageErrorKind};

const MIB: usize = 1024 * 1024;

/// `len` pseudo-random bytes (xorshift), different for each `seed`.
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn write(path: &Path, data: &[u8]) {
    std::fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn no_options() -> BTreeMap<String, String> {
    BTreeMap::new()
}

fn open_err(uri: &str, options: &BTreeMap<String, String>) -> StorageError {
    match DeepStore::open(uri, options) {
        Ok(s) => panic!("opening {uri} should fail, got {s:?}"),
        Err(e) => e,
    }
}

fn s3_options(s3: &S3Server, part_size: usize) -> BTreeMap<String, String> {
    let mut o = s3.options();
    o.insert("upload_part_size".into(), part_size.to_string());
    o
}

fn s3_server(bucket: &str) -> S3Server {
    let s3 = S3Server::start().unwrap_or_else(|e| panic!("{e:#}"));
    s3.create_bucket(bucket).unwrap_or_else(|e| panic!("{e:#}"));
    s3
}

/// The round trip every store must pass: two uploads, list, download into a fresh
/// directory, overwrite, delete, remove_unreferenced. `big` is the size of the large file.
async fn round_trip(store: &DeepStore, big: usize) {
    let src = tempfile::tempdir().expect("tempdir");
    let big_file = src.path().join("big.seg");
    let small_file = src.path().join("small.seg");
    let big_data = bytes(big, 1);
    let small_data = bytes(1000, 2);
    write(&big_file, &big_data);
    write(&small_file, &small_data);

    let table = "events_REALTIME";
    let big_uri = store
        .upload(&big_file, table, "events__0__0__20240101T0000Z")
        .await
        .expect("upload big");
    assert_eq!(
        big_uri,
        format!("{}/{table}/events__0__0__20240101T0000Z", store.uri())
    );
    let small_uri = store
        .upload(&small_file, table, "events__1__0__20240101T0000Z")
        .await
        .expect("upload small");
    // Another table's objects are not listed with this one.
    store
        .upload(&small_file, "other_OFFLINE", "x")
        .await
        .expect("upload other");

    let listed = store.list(table).await.expect("list");
    assert_eq!(
        listed,
        vec![
            (big_uri.clone(), big as u64),
            (small_uri.clone(), small_data.len() as u64)
        ]
    );

    // Download into a directory that does not exist yet.
    let dst = tempfile::tempdir().expect("tempdir");
    let big_copy = dst.path().join("a/b/big.seg");
    let n = store.download(&big_uri, &big_copy).await.expect("download");
    assert_eq!(n, big as u64);
    assert!(read(&big_copy) == big_data, "downloaded bytes differ");
    let leftovers: Vec<_> = std::fs::read_dir(dst.path().join("a/b"))
        .expect("read dir")
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("big.seg")]);

    // Uploading to the same key again replaces the object.
    let small_again = store
        .upload(&small_file, table, "events__0__0__20240101T0000Z")
        .await
        .expect("upload again");
    assert_eq!(small_again, big_uri);
    let n = store.download(&big_uri, &big_copy).await.expect("download");
    assert_eq!(n, small_data.len() as u64);
    assert!(read(&big_copy) == small_data, "overwritten object differs");

    // Delete, then delete again (missing is fine).
    store.delete(&big_uri).await.expect("delete");
    store.delete(&big_uri).await.expect("delete missing");
    let listed = store.list(table).await.expect("list");
    assert_eq!(listed, vec![(small_uri.clone(), small_data.len() as u64)]);

    // A missing object: NotFound, and neither the file nor its temporary copy appears.
    let missing = dst.path().join("missing.seg");
    let e = store
        .download(&big_uri, &missing)
        .await
        .expect_err("missing object");
    assert_eq!(e.kind(), StorageErrorKind::NotFound, "{e}");
    assert_eq!(e.error_kind(), ErrorKind::NotFound);
    assert!(!e.is_retryable());
    assert!(e.to_string().contains(&big_uri), "{e}");
    assert!(!missing.exists());
    assert!(!dst.path().join("missing.seg.download").exists());
    // A failed download leaves an older copy as it was.
    store
        .download(&big_uri, &big_copy)
        .await
        .expect_err("missing object");
    assert!(read(&big_copy) == small_data, "older copy changed");

    // remove_unreferenced keeps exactly the kept ones.
    let c_uri = store
        .upload(&small_file, table, "uncommitted")
        .await
        .expect("upload c");
    let d_uri = store
        .upload(&small_file, table, "deleted_table_leftover")
        .await
        .expect("upload d");
    let keep: HashSet<String> = ["events__1__0__20240101T0000Z".to_string()]
        .into_iter()
        .collect();
    let mut removed = store
        .remove_unreferenced(table, &keep)
        .await
        .expect("remove_unreferenced");
    removed.sort();
    let mut expected = vec![c_uri, d_uri];
    expected.sort();
    assert_eq!(removed, expected);
    let listed = store.list(table).await.expect("list");
    assert_eq!(listed, vec![(small_uri.clone(), small_data.len() as u64)]);
    // Other tables are untouched.
    assert_eq!(store.list("other_OFFLINE").await.expect("list").len(), 1);

    // Everything goes when nothing is kept.
    let removed = store
        .remove_unreferenced(table, &HashSet::new())
        .await
        .expect("remove all");
    assert_eq!(removed, vec![small_uri]);
    assert!(store.list(table).await.expect("list").is_empty());
}

#[tokio::test]
async fn test_file_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path().join("deep/store");
    let uri = format!("file://{}/", base.display());
    let store = DeepStore::open(&uri, &no_options()).expect("open");
    assert!(base.is_dir(), "the base directory is created");
    assert_eq!(store.uri(), format!("file://{}", base.display()));
    round_trip(&store, 5 * 1000 * 1000).await;
}

#[tokio::test]
async fn test_file_multipart_and_java_style_uri() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = no_options();
    options.insert("upload_part_size".into(), (5 * MIB).to_string());
    // Java's File.toURI() form, as Pinot writes it.
    let uri = format!("file:{}", dir.path().display());
    let store = DeepStore::open(&uri, &options).expect("open");
    let src = dir.path().join("in.seg");
    let data = bytes(11 * MIB + 7, 3);
    write(&src, &data);
    let up = store.upload(&src, "t", "s").await.expect("upload");
    let out = dir.path().join("out.seg");
    // The Java form of the object's URI is accepted too.
    let java = up.replacen("file://", "file:", 1);
    assert_eq!(
        store.download(&java, &out).await.expect("download"),
        data.len() as u64
    );
    assert!(read(&out) == data);
    // An upload of a missing local file names it.
    let e = store
        .upload(&dir.path().join("nope"), "t", "s2")
        .await
        .expect_err("missing local file");
    assert!(e.to_string().contains("nope"), "{e}");
    assert_eq!(e.kind(), StorageErrorKind::Io, "{e}");
    // A local upload stages in `<object>#0`: nothing is left of it after success, and one
    // left by a crash is hidden from listings and removed with the unreferenced objects.
    let names = |d: &std::path::Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
            .collect();
        v.sort();
        v
    };
    let table_dir = dir.path().join("t");
    assert_eq!(names(&table_dir), vec!["s".to_string()]);
    write(&table_dir.join("s2#0"), b"half a segment");
    assert_eq!(
        store.list("t").await.expect("list"),
        vec![(up.clone(), data.len() as u64)]
    );
    let keep: HashSet<String> = ["s".to_string()].into_iter().collect();
    let removed = store.remove_unreferenced("t", &keep).await.expect("remove");
    assert_eq!(removed, vec![format!("{}/t/s2#0", store.uri())]);
    assert_eq!(names(&table_dir), vec!["s".to_string()]);
}

#[tokio::test]
async fn test_s3_round_trip_with_multipart() {
    let s3 = s3_server("riffle-deep");
    let store =
        DeepStore::open("s3://riffle-deep/cluster-a/", &s3_options(&s3, 5 * MIB)).expect("open");
    assert_eq!(store.uri(), "s3://riffle-deep/cluster-a");
    round_trip(&store, 12 * 1000 * 1000).await;

    // A 12 MB file with 5 MiB parts goes up in 3 parts: S3 gives a multipart object an
    // ETag ending in "-<parts>".
    let src = tempfile::tempdir().expect("tempdir");
    let file = src.path().join("seg");
    let data = bytes(12 * 1000 * 1000, 9);
    write(&file, &data);
    let uri = store.upload(&file, "t", "multi").await.expect("upload");
    assert_eq!(uri, "s3://riffle-deep/cluster-a/t/multi");
    let raw = AmazonS3Builder::new()
        .with_bucket_name("riffle-deep")
        .with_endpoint(s3.endpoint())
        .with_region("us-east-1")
        .with_access_key_id("riffle")
        .with_secret_access_key("riffle-secret")
        .with_allow_http(true)
        .build()
        .expect("raw client");
    let meta = raw
        .head(&ObjectPath::from("cluster-a/t/multi"))
        .await
        .expect("head");
    assert_eq!(meta.size, data.len() as u64);
    let etag = meta.e_tag.unwrap_or_default();
    assert!(etag.trim_matches('"').ends_with("-3"), "etag {etag}");

    // A fresh store (another process, say) downloads it to a fresh directory.
    let other = DeepStore::open("s3://riffle-deep/cluster-a", &s3.options()).expect("open");
    let dst = tempfile::tempdir().expect("tempdir");
    let out = dst.path().join("seg");
    let n = other.download(&uri, &out).await.expect("download");
    assert_eq!(n, data.len() as u64);
    assert!(read(&out) == data, "downloaded bytes differ");
    other.delete(&uri).await.expect("delete");
    assert!(other.list("t").await.expect("list").is_empty());
}

#[tokio::test]
async fn test_s3_pinot_option_names() {
    let s3 = s3_server("riffle-pinot");
    let options: BTreeMap<String, String> = [
        ("pinot.controller.storage.factory.s3.region", "us-east-1"),
        (
            "pinot.controller.storage.factory.s3.endpoint",
            &s3.endpoint(),
        ),
        ("pinot.controller.storage.factory.s3.accessKey", "riffle"),
        ("secretKey", "riffle-secret"),
        ("allow_http", "true"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let store = DeepStore::open("s3://riffle-pinot", &options).expect("open");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("f");
    write(&file, b"pinot");
    let uri = store.upload(&file, "t", "s").await.expect("upload");
    assert_eq!(uri, "s3://riffle-pinot/t/s");
    assert_eq!(store.list("t").await.expect("list"), vec![(uri.clone(), 5)]);
    // A missing S3 object is NotFound.
    let e = store
        .download("s3://riffle-pinot/t/missing", &dir.path().join("m"))
        .await
        .expect_err("missing");
    assert_eq!(e.kind(), StorageErrorKind::NotFound, "{e}");
    // A missing bucket is not retryable either.
    let none = DeepStore::open("s3://no-such-bucket", &options).expect("open");
    let e = none.list("t").await.expect_err("missing bucket");
    assert!(!e.is_retryable(), "{e}");
}

#[test]
fn test_bad_configs() {
    // Unknown scheme.
    let e = open_err("ftp://host/dir", &no_options());
    assert_eq!(e.kind(), StorageErrorKind::InvalidConfig);
    assert_eq!(e.error_kind(), ErrorKind::BadRequest);
    assert!(e.to_string().contains("'ftp'"), "{e}");
    let e = open_err("not a uri", &no_options());
    assert_eq!(e.kind(), StorageErrorKind::InvalidConfig, "{e}");

    // Unknown option key, named in the message.
    let mut o = no_options();
    o.insert("aws_regoin".into(), "x".into());
    let e = open_err("s3://bucket/p", &o);
    assert_eq!(e.kind(), StorageErrorKind::InvalidConfig);
    assert!(e.to_string().contains("'aws_regoin'"), "{e}");
    let mut o = no_options();
    o.insert("region".into(), "x".into());
    let e = open_err("file:///tmp/riffle-never", &o);
    assert!(e.to_string().contains("'region'"), "{e}");

    // Conflicting aliases.
    let mut o = no_options();
    o.insert("region".into(), "a".into());
    o.insert("aws_region".into(), "b".into());
    let e = open_err("s3://bucket", &o);
    assert_eq!(e.kind(), StorageErrorKind::InvalidConfig, "{e}");

    // Bad part size.
    let mut o = no_options();
    o.insert("upload_part_size".into(), "1000".into());
    let e = open_err("s3://bucket", &o);
    assert!(e.to_string().contains("upload_part_size"), "{e}");

    // S3 URIs without a bucket.
    for uri in ["s3://", "s3:///prefix", "gs://"] {
        let e = open_err(uri, &no_options());
        assert_eq!(e.kind(), StorageErrorKind::InvalidConfig, "{uri}: {e}");
        assert!(e.to_string().contains("no bucket"), "{uri}: {e}");
    }

    // Credentials in the URI are refused and not echoed.
    let e = open_err("s3://AKIAXXXX:topsecret@bucket/p", &no_options());
    assert_eq!(e.kind(), StorageErrorKind::InvalidConfig);
    assert!(!e.to_string().contains("topsecret"), "{e}");
    assert!(!e.to_string().contains("AKIAXXXX"), "{e}");

    // A relative file path.
    let e = open_err("file:relative/dir", &no_options());
    assert_eq!(e.kind(), StorageErrorKind::InvalidConfig, "{e}");
}

#[tokio::test]
async fn test_bad_arguments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store =
        DeepStore::open(&format!("file://{}", dir.path().display()), &no_options()).expect("open");
    let file = dir.path().join("f");
    write(&file, b"x");
    for (table, segment) in [
        ("", "s"),
        ("t", ""),
        ("a/b", "s"),
        ("t", ".."),
        ("t", "a\nb"),
    ] {
        let e = store
            .upload(&file, table, segment)
            .await
            .expect_err("bad name");
        assert_eq!(
            e.kind(),
            StorageErrorKind::InvalidInput,
            "{table:?} {segment:?}"
        );
    }
    // URIs outside the base.
    for uri in [
        "s3://bucket/t/s".to_string(),
        "file:///elsewhere/t/s".to_string(),
        store.uri().to_string(),
        format!("{}/", store.uri()),
    ] {
        let e = store
            .download(&uri, &dir.path().join("out"))
            .await
            .expect_err("outside");
        assert_eq!(e.kind(), StorageErrorKind::InvalidInput, "{uri}: {e}");
        let e = store.delete(&uri).await.expect_err("outside");
        assert_eq!(e.kind(), StorageErrorKind::InvalidInput, "{uri}: {e}");
    }
}

/// Options for an S3 endpoint at `endpoint` with a recognisable secret.
fn dead_options(endpoint: &str) -> BTreeMap<String, String> {
    [
        ("aws_endpoint", endpoint),
        ("aws_access_key_id", "riffle"),
        ("aws_secret_access_key", "very-secret-value"),
        ("aws_allow_http", "true"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn assert_unavailable(e: &StorageError, took: Duration, limit: Duration) {
    assert_eq!(e.kind(), StorageErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable(), "{e}");
    assert_eq!(e.error_kind(), ErrorKind::Unavailable);
    assert!(took < limit, "took {took:?}: {e}");
    assert!(!e.to_string().contains("very-secret-value"), "{e}");
}

#[tokio::test]
async fn test_unreachable_endpoint_fails_fast_and_retryable() {
    // Nothing listens on the port: connections are refused.
    let port = free_port().expect("port");
    let options = dead_options(&format!("http://127.0.0.1:{port}"));
    let store = DeepStore::open("s3://bucket/p", &options).expect("open");
    assert!(!format!("{store:?}").contains("very-secret-value"));

    let start = Instant::now();
    let e = store.list("t").await.expect_err("unreachable");
    assert_unavailable(&e, start.elapsed(), Duration::from_secs(5));
    assert!(e.to_string().contains("s3://bucket/p/t"), "{e}");

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("f");
    write(&file, b"x");
    let start = Instant::now();
    let e = store
        .upload(&file, "t", "s")
        .await
        .expect_err("unreachable");
    assert_unavailable(&e, start.elapsed(), Duration::from_secs(5));

    let out = dir.path().join("out");
    let e = store
        .download("s3://bucket/p/t/s", &out)
        .await
        .expect_err("unreachable");
    assert!(e.is_retryable(), "{e}");
    assert!(!out.exists());
}

#[tokio::test]
async fn test_silent_endpoint_times_out() {
    // A server that accepts connections (the kernel does) and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let mut options = dead_options(&format!("http://127.0.0.1:{port}"));
    options.insert("timeout".into(), "1s".into());
    let store = DeepStore::open("s3://bucket", &options).expect("open");
    let start = Instant::now();
    let e = store.list("t").await.expect_err("silent");
    assert_unavailable(&e, start.elapsed(), Duration::from_secs(20));
    drop(listener);
}
