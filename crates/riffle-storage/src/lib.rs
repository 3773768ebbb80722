//! riffle-storage: the deep store, where sealed segments are kept for good (Pinot's PinotFS
//! and segment fetcher in one), over the `object_store` crate.
//!
//! It owns [`DeepStore`]: upload a local segment file to `<base>/<table>/<segment>`,
//! download an object by URI to a local file, list a table's objects, delete one, and
//! delete the ones whose key names no committed segment ([`DeepStore::remove_unreferenced`];
//! matched by key, so objects survive a base URI that moved).
//! It also owns the segment fetchers by URI scheme ([`Fetchers`], [`fetch`]): file, http(s),
//! the object stores, and a [`SegmentFetcher`] a plugin registers for its own scheme.
//! It knows nothing about segment formats or the catalog: the caller keeps the URIs.
//!
//! # URIs
//!
//! | Base URI | Store |
//! |---|---|
//! | `file:///abs/dir` (also `file:/abs/dir`) | a local directory, created if missing |
//! | `s3://bucket[/prefix]` (also `s3a://`) | Amazon S3 or an S3-compatible server |
//! | `gs://bucket[/prefix]` | Google Cloud Storage |
//! | `az://container[/prefix]`, `abfs[s]://container@account.dfs.core.windows.net[/prefix]` | Azure Blob Storage |
//! | `http[s]://host[:port][/prefix]` | a WebDAV-style HTTP server |
//!
//! An object's URI is the base URI, `/`, and its key relative to the base, unencoded
//! (as the AWS CLI writes `s3://` URIs): `s3://bucket/prefix/events_REALTIME/events__0__3__...`.
//! A base URI must not carry credentials, a query or a fragment.
//!
//! # Options
//!
//! object_store's configuration keys for the scheme, in any case:
//! - S3: `aws_endpoint` / `endpoint`, `aws_region` / `region`, `aws_access_key_id` /
//!   `access_key_id`, `aws_secret_access_key`, `aws_session_token`,
//!   `aws_allow_http` / `allow_http`, `aws_virtual_hosted_style_request`, ... Pinot's
//!   PinotFS names are accepted too: `accessKey`, `secretKey`, `region`, `endpoint`, bare
//!   or under `pinot.{controller,server,minion}.storage.factory.s3.`.
//! - GCS: `google_service_account`, `google_service_account_key`, ...; Azure:
//!   `azure_storage_account_name`, `azure_storage_account_key`, ...
//! - Every remote scheme: object_store's HTTP client keys (`connect_timeout`, `timeout`,
//!   `allow_http`, `proxy_url`, ...).
//! - `upload_part_size` (any scheme): bytes per upload part and per download range
//!   request, 5 MiB to 5 GiB, default 8 MiB.
//!
//! An unknown key is an [`StorageErrorKind::InvalidConfig`] error naming it; so is a key
//! given twice (under two names) with different values. For S3, GCS and Azure the
//! builders start from the process environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`), which
//! options override, so that the usual credential chains (e.g. web identity) work.
//!
//! Timeouts and retries: connecting times out after 3 s and a request after 60 s (a
//! request carries at most one part; `connect_timeout` and `timeout` override them).
//! object_store retries a failed request at most twice, and not after 5 s. On top of that
//! [`DeepStore`] runs a whole operation that failed transiently up to 3 times, starting no
//! new attempt 10 s after the first ([`RetryPolicy`], [`retry`],
//! [`DeepStore::with_retry_policy`]). A refused connection is reported in about a second
//! and an endpoint that never answers a connection within about 13 s, as a retryable
//! [`StorageErrorKind::Unavailable`] error.
//!
//! # Invariants
//!
//! - A download is complete or absent: bytes go to `<local>.download`, which is synced
//!   and renamed to `local`; a failed download leaves no `local` (an older one is kept).
//! - An upload is idempotent: the key depends only on the table and segment names, and
//!   uploading again overwrites the object. A file larger than the part size is uploaded
//!   in parts (at most 4 in flight), so memory stays bounded; a failed multipart upload
//!   is aborted.
//! - Deleting a missing object succeeds.
//! - Error messages name the URI and never contain credentials (secret option values and
//!   URL query strings are removed).

mod config;
mod error;
pub mod fetch;
mod retry;
mod store;
/// moto's S3 server for tests (feature `testsuite`).
#[cfg(feature = "testsuite")]
pub mod testing;

pub use error::{StorageError, StorageErrorKind};
pub use fetch::{Fetchers, SegmentFetcher};
pub use retry::{retry, RetryPolicy};
pub use store::DeepStore;
