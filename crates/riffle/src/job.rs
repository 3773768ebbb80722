//! `LaunchDataIngestionJob -jobSpecFile spec.yaml [-values k=v ...] [-propertyFile f]`:
//! Pinot's batch ingestion job spec, run standalone. Segments are built from the input
//! files in parallel (one per file, progress on stderr), written as segment tars to the
//! output directory, then pushed to each controller by tar, by URI or by metadata. A file
//! that fails stops the job before anything is written or pushed.
//!
//! The spec may be a template: `${name}` is replaced by `-values name=value` or by the
//! `-propertyFile`'s keys. Inputs and outputs are local paths, `file://` URIs or deep-store
//! URIs (`s3://`, `gs://`, `az://`, `http(s)://`), with `pinotFSSpecs[].configs` as the
//! store's options (Pinot's S3 keys `region`, `endpoint`, `accessKey`, `secretKey` work).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use riffle_config::{Schema, TableConfig};
use riffle_decode::readers::FileFormat;
use riffle_ingest::segment_build::{build_segments, BuildProgress, SegmentInput, SimpleName};
use riffle_segment::tarball::{self, TarMeta};
use riffle_storage::DeepStore;
use serde::Deserialize;
use serde_json::Value;

use crate::admin::parse_flags;

const USAGE: &str = "\
usage: riffle LaunchDataIngestionJob -jobSpecFile <spec.yaml> [-values k=v ...] [-propertyFile <file>]

Runs Pinot's batch ingestion job spec: builds one segment per input file (in parallel),
writes <segment>.tar.gz to outputDirURI, then pushes them (jobType SegmentCreation,
SegmentTarPush, SegmentUriPush, SegmentMetadataPush, or SegmentCreationAnd...Push).";

/// Pinot's job spec; a key Pinot's spec does not have (a typo) is an error naming it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct JobSpec {
    #[serde(default)]
    execution_framework_spec: Option<Framework>,
    job_type: String,
    #[serde(rename = "inputDirURI")]
    input_dir_uri: Option<String>,
    search_recursively: Option<bool>,
    include_file_name_pattern: Option<String>,
    exclude_file_name_pattern: Option<String>,
    #[serde(rename = "outputDirURI")]
    output_dir_uri: Option<String>,
    overwrite_output: Option<bool>,
    segment_creation_job_parallelism: Option<usize>,
    #[serde(rename = "pinotFSSpecs", default)]
    pinot_fs_specs: Vec<FsSpec>,
    record_reader_spec: Option<ReaderSpec>,
    table_spec: TableSpecY,
    segment_name_generator_spec: Option<NameGenSpec>,
    #[serde(default)]
    pinot_cluster_specs: Vec<ClusterSpec>,
    push_job_spec: Option<PushSpec>,
    fail_on_empty_segment: Option<bool>,
    auth_token: Option<String>,
    /// Accepted, not used: the output directory is kept.
    #[allow(dead_code)]
    clean_up_output_dir: Option<bool>,
    /// Accepted, not used: metadata tars are made when pushing.
    #[allow(dead_code)]
    create_metadata_tar_gz: Option<bool>,
    /// Accepted, not used: TLS to the controller follows the URI's scheme.
    #[allow(dead_code)]
    tls_spec: Option<serde_norway::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Framework {
    name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FsSpec {
    scheme: String,
    #[serde(default)]
    configs: BTreeMap<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReaderSpec {
    data_format: Option<String>,
    class_name: Option<String>,
    #[serde(default)]
    configs: BTreeMap<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TableSpecY {
    table_name: String,
    #[serde(rename = "schemaURI")]
    schema_uri: Option<String>,
    #[serde(rename = "tableConfigURI")]
    table_config_uri: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NameGenSpec {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    configs: BTreeMap<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClusterSpec {
    #[serde(rename = "controllerURI")]
    controller_uri: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PushSpec {
    push_attempts: Option<u32>,
    push_retry_interval_millis: Option<u64>,
    segment_uri_prefix: Option<String>,
    segment_uri_suffix: Option<String>,
    copy_to_deep_store_for_metadata_push: Option<bool>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Push {
    None,
    Tar,
    Uri,
    Metadata,
}

fn job_type(t: &str) -> Result<(bool, Push)> {
    Ok(match t {
        "SegmentCreation" => (true, Push::None),
        "SegmentTarPush" => (false, Push::Tar),
        "SegmentUriPush" => (false, Push::Uri),
        "SegmentMetadataPush" => (false, Push::Metadata),
        "SegmentCreationAndTarPush" => (true, Push::Tar),
        "SegmentCreationAndUriPush" => (true, Push::Uri),
        "SegmentCreationAndMetadataPush" => (true, Push::Metadata),
        other => bail!("jobType '{other}' is not SegmentCreation, SegmentTarPush, SegmentUriPush, SegmentMetadataPush or SegmentCreationAnd{{Tar,Uri,Metadata}}Push"),
    })
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `${name}` replaced by its value; an unknown name is an error naming it.
fn render(template: &str, values: &BTreeMap<String, String>) -> Result<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| anyhow!("-jobSpecFile: '${{' without a closing '}}'"))?;
        let key = after[..end].trim();
        let v = values.get(key).ok_or_else(|| {
            anyhow!("-jobSpecFile uses ${{{key}}}, which no -values or -propertyFile sets")
        })?;
        out.push_str(v);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `LaunchDataIngestionJob`.
pub async fn launch(args: &[String]) -> Result<()> {
    let f = parse_flags(args, &["jobSpecFile", "values", "propertyFile"], &["help"])?;
    if f.is_set("help") {
        println!("{USAGE}");
        return Ok(());
    }
    let path = f
        .get("jobSpecFile")
        .ok_or_else(|| anyhow!("-jobSpecFile is required\n\n{USAGE}"))?;
    let raw = std::fs::read_to_string(path).with_context(|| format!("-jobSpecFile '{path}'"))?;
    let mut values = BTreeMap::new();
    if let Some(p) = f.get("propertyFile") {
        let t = std::fs::read_to_string(p).with_context(|| format!("-propertyFile '{p}'"))?;
        values.extend(tarball::parse_properties(&t));
    }
    for kv in f.all("values") {
        for one in kv.split_whitespace() {
            let (k, v) = one
                .split_once('=')
                .ok_or_else(|| anyhow!("-values '{one}': expected key=value"))?;
            values.insert(k.to_string(), v.to_string());
        }
    }
    let text_spec = render(&raw, &values)?;
    let spec: JobSpec =
        serde_norway::from_str(&text_spec).map_err(|e| anyhow!("-jobSpecFile '{path}': {e}"))?;
    if let Some(name) = spec
        .execution_framework_spec
        .as_ref()
        .and_then(|e| e.name.as_deref())
    {
        if !name.eq_ignore_ascii_case("standalone") {
            bail!("executionFrameworkSpec.name '{name}': only 'standalone' runs here (Spark and Hadoop runners are not part of Riffle)");
        }
    }
    let (create, push) = job_type(&spec.job_type)?;
    let job = Job::new(spec).await?;
    let tars = if create {
        job.create().await?
    } else {
        job.existing_tars().await?
    };
    if push != Push::None {
        job.push(push, &tars).await?;
    }
    Ok(())
}

/// One built segment tar.
struct Built {
    name: String,
    /// Where it is now (local).
    local: PathBuf,
    /// Where the job's output keeps it.
    uri: String,
    meta: TarMeta,
}

/// What every step of a job reads through: the spec, the HTTP client, a work directory.
struct Io {
    spec: JobSpec,
    http: reqwest::Client,
    work: tempfile::TempDir,
}

struct Job {
    io: Io,
    table: TableConfig,
    schema: Schema,
}

impl std::ops::Deref for Job {
    type Target = Io;
    fn deref(&self) -> &Io {
        &self.io
    }
}

impl Job {
    async fn new(spec: JobSpec) -> Result<Job> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(t) = &spec.auth_token {
            headers.insert(
                reqwest::header::AUTHORIZATION,
                reqwest::header::HeaderValue::from_str(t)
                    .map_err(|_| anyhow!("authToken is not a valid header value"))?,
            );
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        let work = tempfile::Builder::new().prefix("riffle-job").tempdir()?;
        let io = Io { spec, http, work };
        let (table, schema) = io.table_and_schema().await?;
        Ok(Job { io, table, schema })
    }
}

impl Io {
    fn fs_options(&self, scheme: &str) -> BTreeMap<String, String> {
        self.spec
            .pinot_fs_specs
            .iter()
            .filter(|s| s.scheme.eq_ignore_ascii_case(scheme))
            .flat_map(|s| s.configs.iter().map(|(k, v)| (k.clone(), text(v))))
            .collect()
    }

    /// The bytes at a URI or local path (a table config, a schema).
    async fn read_uri(&self, uri: &str, what: &str) -> Result<Vec<u8>> {
        if uri.starts_with("http://") || uri.starts_with("https://") {
            let resp = self
                .http
                .get(uri)
                .send()
                .await
                .with_context(|| format!("{what} '{uri}'"))?;
            let status = resp.status();
            let body = resp.bytes().await?;
            if !status.is_success() {
                bail!(
                    "{what} '{uri}': HTTP {status}: {}",
                    String::from_utf8_lossy(&body)
                );
            }
            return Ok(body.to_vec());
        }
        let local = self.localize(uri, what).await?;
        std::fs::read(&local).with_context(|| format!("{what} '{uri}'"))
    }

    async fn table_and_schema(&self) -> Result<(TableConfig, Schema)> {
        let ts = &self.spec.table_spec;
        let cfg_uri = ts
            .table_config_uri
            .clone()
            .ok_or_else(|| anyhow!("tableSpec.tableConfigURI is required"))?;
        let cfg: Value =
            serde_json::from_slice(&self.read_uri(&cfg_uri, "tableSpec.tableConfigURI").await?)
                .map_err(|e| anyhow!("tableSpec.tableConfigURI '{cfg_uri}': not JSON: {e}"))?;
        // The controller answers {"OFFLINE": config, "REALTIME": config}.
        let cfg = match cfg.get("OFFLINE") {
            Some(o) => o.clone(),
            None if cfg.get("REALTIME").is_some() => {
                bail!("tableSpec.tableConfigURI '{cfg_uri}': table {} has no OFFLINE config; batch data goes to an OFFLINE table", ts.table_name)
            }
            None => cfg,
        };
        let table = TableConfig::from_value(&cfg)
            .map_err(|e| anyhow!("tableSpec.tableConfigURI '{cfg_uri}': {e}"))?;
        let schema_uri = match &ts.schema_uri {
            Some(u) => u.clone(),
            None => format!("{}/tables/{}/schema", self.controller()?, ts.table_name),
        };
        let schema = Schema::from_json(&self.read_uri(&schema_uri, "tableSpec.schemaURI").await?)
            .map_err(|e| anyhow!("tableSpec.schemaURI '{schema_uri}': {e}"))?;
        table
            .validate(&schema)
            .map_err(|e| anyhow!("tableSpec: {e}"))?;
        Ok((table, schema))
    }

    fn controller(&self) -> Result<String> {
        self.spec
            .pinot_cluster_specs
            .first()
            .map(|c| c.controller_uri.trim_end_matches('/').to_string())
            .ok_or_else(|| anyhow!("pinotClusterSpecs[0].controllerURI is required"))
    }

    /// A local path for `uri`: itself when local, else a download into the work dir.
    async fn localize(&self, uri: &str, what: &str) -> Result<PathBuf> {
        if let Some(p) = local_path(uri) {
            return Ok(p);
        }
        let store = self.store_for(uri)?;
        let name = uri.rsplit('/').next().unwrap_or("file");
        let local = self
            .work
            .path()
            .join(format!("{}-{name}", uuid::Uuid::new_v4().simple()));
        store
            .download(uri, &local)
            .await
            .map_err(|e| anyhow!("{what} '{uri}': {e}"))?;
        Ok(local)
    }

    fn store_for(&self, uri: &str) -> Result<DeepStore> {
        let url = url_parts(uri).ok_or_else(|| anyhow!("'{uri}' is not a URI"))?;
        DeepStore::open(&format!("{}://{}", url.0, url.1), &self.fs_options(&url.0))
            .map_err(|e| anyhow!("'{uri}': {e}"))
    }
}

impl Job {
    /// The input files: (URI, local path, format).
    async fn inputs(&self) -> Result<Vec<(String, PathBuf, FileFormat)>> {
        let dir = self
            .spec
            .input_dir_uri
            .clone()
            .ok_or_else(|| anyhow!("inputDirURI is required"))?;
        let include = pattern(
            self.spec.include_file_name_pattern.as_deref(),
            "includeFileNamePattern",
        )?;
        let exclude = pattern(
            self.spec.exclude_file_name_pattern.as_deref(),
            "excludeFileNamePattern",
        )?;
        let recursive = self.spec.search_recursively.unwrap_or(true);
        let listed: Vec<String> = match local_path(&dir) {
            Some(p) => list_local(&p, recursive)
                .with_context(|| format!("inputDirURI '{dir}'"))?
                .into_iter()
                .map(|p| p.display().to_string())
                .collect(),
            None => self
                .store_for(&dir)?
                .list_dir(&dir)
                .await
                .map_err(|e| anyhow!("inputDirURI '{dir}': {e}"))?
                .into_iter()
                .map(|(u, _)| u)
                .collect(),
        };
        let format = self.format()?;
        let mut out = Vec::new();
        for uri in listed {
            let path_part = uri.split_once("://").map_or(uri.as_str(), |(_, r)| r);
            let path_part = format!("/{}", path_part.trim_start_matches('/'));
            if include.as_ref().is_some_and(|p| !p.matches(&path_part))
                || exclude.as_ref().is_some_and(|p| p.matches(&path_part))
            {
                continue;
            }
            let fmt = match format {
                Some(f) => f,
                None => match FileFormat::from_path(Path::new(&uri)) {
                    Some(f) => f,
                    None => continue,
                },
            };
            let local = self.localize(&uri, "input").await?;
            out.push((uri, local, fmt));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        if out.is_empty() {
            bail!("inputDirURI '{dir}' holds no input files that match includeFileNamePattern");
        }
        Ok(out)
    }

    fn format(&self) -> Result<Option<FileFormat>> {
        let Some(r) = &self.spec.record_reader_spec else {
            return Ok(None);
        };
        match (&r.data_format, &r.class_name) {
            (Some(f), _) => {
                Ok(Some(FileFormat::parse(f).map_err(|e| {
                    anyhow!("recordReaderSpec.dataFormat: {e}")
                })?))
            }
            (None, Some(c)) => Ok(Some(
                FileFormat::parse(c).map_err(|e| anyhow!("recordReaderSpec.className: {e}"))?,
            )),
            (None, None) => Ok(None),
        }
    }

    fn naming(&self, i: usize, input: &Path) -> Result<(String, Option<SimpleName>)> {
        let g = self.spec.segment_name_generator_spec.as_ref();
        let cfg = |k: &str| g.and_then(|g| g.configs.get(k)).map(text);
        let kind = g.and_then(|g| g.kind.clone()).unwrap_or_else(|| {
            if cfg("segment.name").is_some() {
                "fixed".into()
            } else {
                "simple".into()
            }
        });
        let seq = cfg("exclude.sequence.id")
            .is_none_or(|v| v != "true")
            .then_some(i);
        match kind.as_str() {
            "simple" => Ok((
                String::new(),
                Some(SimpleName {
                    prefix: cfg("segment.name.prefix")
                        .unwrap_or_else(|| self.table.name_with_type().to_string()),
                    postfix: cfg("segment.name.postfix"),
                    sequence: seq,
                }),
            )),
            "fixed" => {
                let n = cfg("segment.name")
                    .ok_or_else(|| anyhow!("segmentNameGeneratorSpec: type fixed needs configs.segment.name"))?;
                Ok((n, None))
            }
            "inputFile" => {
                let stem = input
                    .display()
                    .to_string()
                    .trim_start_matches('/')
                    .replace(['/', '.'], "_");
                Ok((stem, None))
            }
            other => bail!("segmentNameGeneratorSpec.type '{other}' is not supported here: use simple, fixed or inputFile"),
        }
    }

    /// Builds every segment, then writes the tars to the output directory.
    async fn create(&self) -> Result<Vec<Built>> {
        let inputs = self.inputs().await?;
        let reader_configs: BTreeMap<String, String> = self
            .spec
            .record_reader_spec
            .as_ref()
            .map(|r| {
                r.configs
                    .iter()
                    .map(|(k, v)| (k.clone(), text(v)))
                    .collect()
            })
            .unwrap_or_default();
        let mut segs = Vec::new();
        for (i, (_, local, format)) in inputs.iter().enumerate() {
            let (name, simple_name) = self.naming(i, local)?;
            segs.push(SegmentInput {
                file: local.clone(),
                format: *format,
                name,
                simple_name,
            });
        }
        let ctx = riffle_stream::StreamContext::new(self.work.path().to_path_buf());
        let (spec, _) = riffle_controller::spec::resolve(
            Arc::new(self.table.clone()),
            Arc::new(self.schema.clone()),
            &riffle_node::default_streams(),
            &ctx,
            riffle_transform::TransformOptions::default(),
        )
        .map_err(|e| anyhow!("tableSpec: {e}"))?;
        let threads = self
            .spec
            .segment_creation_job_parallelism
            .filter(|n| *n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let build_dir = self.work.path().join("segments");
        std::fs::create_dir_all(&build_dir)?;
        let total: u64 = segs
            .iter()
            .map(|s| std::fs::metadata(&s.file).map(|m| m.len()).unwrap_or(0))
            .sum();
        let progress = BuildProgress::default();
        let start = Instant::now();
        let results = tokio::task::block_in_place(|| {
            let done = std::sync::atomic::AtomicBool::new(false);
            std::thread::scope(|s| {
                let reporter = s.spawn(|| {
                    while !done.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(500));
                        crate::segments::report(&progress, segs.len(), total, start, false);
                    }
                });
                let r = build_segments(
                    &spec,
                    &segs,
                    &reader_configs,
                    &build_dir,
                    threads,
                    &progress,
                );
                done.store(true, Ordering::Relaxed);
                let _ = reporter.join();
                r
            })
        });
        crate::segments::report(&progress, segs.len(), total, start, true);
        let mut built = Vec::new();
        let mut failed = Vec::new();
        for r in results {
            match r {
                Ok(b) if b.rows == 0 && self.spec.fail_on_empty_segment.unwrap_or(false) => failed
                    .push(format!(
                        "{}: no rows (failOnEmptySegment)",
                        b.input.file.display()
                    )),
                Ok(b) => built.push(b),
                Err(e) => failed.push(e),
            }
        }
        if !failed.is_empty() {
            bail!(
                "{} of {} input files failed; nothing was written or pushed:\n  {}",
                failed.len(),
                segs.len(),
                failed.join("\n  ")
            );
        }
        let mut names = std::collections::HashSet::new();
        for b in &built {
            if !names.insert(b.input.name.clone()) {
                bail!("two input files give segment name '{}': set segmentNameGeneratorSpec (a sequence id or inputFile)", b.input.name);
            }
            riffle_common::check_segment_name(&b.input.name).map_err(|e| anyhow!(e))?;
        }
        self.write_outputs(built).await
    }

    async fn write_outputs(
        &self,
        built: Vec<riffle_ingest::segment_build::BuiltSegment>,
    ) -> Result<Vec<Built>> {
        let out = self
            .spec
            .output_dir_uri
            .clone()
            .ok_or_else(|| anyhow!("outputDirURI is required"))?;
        let out = out.trim_end_matches('/').to_string();
        let overwrite = self.spec.overwrite_output.unwrap_or(false);
        let local_out = local_path(&out);
        let store = match &local_out {
            Some(d) => {
                std::fs::create_dir_all(d).with_context(|| format!("outputDirURI '{out}'"))?;
                None
            }
            None => Some(self.store_for(&out)?),
        };
        let existing: Vec<String> = match (&local_out, &store) {
            (Some(_), _) => Vec::new(),
            (None, Some(s)) => s
                .list_dir(&out)
                .await
                .map(|l| l.into_iter().map(|(u, _)| u).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let mut tars = Vec::new();
        for b in &built {
            let name = b.input.name.clone();
            let file = format!("{name}.tar.gz");
            let uri = match &local_out {
                Some(d) => d.join(&file).display().to_string(),
                None => format!("{out}/{file}"),
            };
            let exists = match &local_out {
                Some(d) => d.join(&file).exists(),
                None => existing.contains(&uri),
            };
            if exists && !overwrite {
                bail!("output '{uri}' exists: set overwriteOutput: true to replace it (nothing was written)");
            }
            tars.push((b, name, file, uri));
        }
        let mut out_list = Vec::new();
        for (b, name, file, uri) in tars {
            let meta = TarMeta::of_sealed(
                self.table.name().as_str(),
                &b.file,
                self.table.time_column(),
                riffle_common::now_ms(),
            );
            let local = match &local_out {
                Some(d) => d.join(&file),
                None => self.work.path().join(&file),
            };
            let (m, seg, l) = (meta.clone(), b.path.clone(), local.clone());
            tokio::task::spawn_blocking(move || tarball::write_tar(&m, Some(&seg), &l)).await??;
            if let Some(s) = &store {
                s.upload_to(&local, &uri)
                    .await
                    .map_err(|e| anyhow!("outputDirURI: {e}"))?;
            }
            let _ = std::fs::remove_file(&b.path);
            eprintln!("segment {name}: {} rows -> {uri}", b.rows);
            out_list.push(Built {
                name,
                local,
                uri,
                meta,
            });
        }
        Ok(out_list)
    }

    /// The segment tars already in the output directory (push-only jobs).
    async fn existing_tars(&self) -> Result<Vec<Built>> {
        let out = self
            .spec
            .output_dir_uri
            .clone()
            .ok_or_else(|| anyhow!("outputDirURI is required"))?;
        let listed: Vec<String> = match local_path(&out) {
            Some(p) => list_local(&p, true)?
                .into_iter()
                .map(|p| p.display().to_string())
                .collect(),
            None => self
                .store_for(&out)?
                .list_dir(out.trim_end_matches('/'))
                .await
                .map_err(|e| anyhow!("outputDirURI '{out}': {e}"))?
                .into_iter()
                .map(|(u, _)| u)
                .collect(),
        };
        let mut found = Vec::new();
        for uri in listed.into_iter().filter(|u| u.ends_with(".tar.gz")) {
            let local = self.localize(&uri, "outputDirURI").await?;
            let meta = tarball::read_tar(&local, &uri, None).map_err(|e| anyhow!("{e}"))?;
            found.push(Built {
                name: meta.segment_name.clone(),
                local,
                uri,
                meta,
            });
        }
        if found.is_empty() {
            bail!("outputDirURI '{out}' holds no segment tars (*.tar.gz) to push");
        }
        Ok(found)
    }

    /// The URI a URI or metadata push names for a tar (Pinot's rule: prefix + path +
    /// suffix, else the URI itself).
    fn push_uri(&self, b: &Built) -> String {
        let p = self.spec.push_job_spec.as_ref();
        let prefix = p
            .and_then(|p| p.segment_uri_prefix.clone())
            .unwrap_or_default();
        let suffix = p
            .and_then(|p| p.segment_uri_suffix.clone())
            .unwrap_or_default();
        let uri = if local_path(&b.uri).is_some() && !b.uri.starts_with("file:") {
            format!("file://{}", b.uri)
        } else {
            b.uri.clone()
        };
        if prefix.is_empty() && suffix.is_empty() {
            return uri;
        }
        let path = uri.split_once("://").map_or(uri.as_str(), |(_, r)| r);
        let path = match path.find('/') {
            Some(i) if !uri.starts_with("file:") => &path[i..],
            _ => path,
        };
        format!("{prefix}{path}{suffix}")
    }

    async fn push(&self, how: Push, tars: &[Built]) -> Result<()> {
        if self.spec.pinot_cluster_specs.is_empty() {
            bail!("pinotClusterSpecs is empty: no controller to push to");
        }
        let p = self.spec.push_job_spec.as_ref();
        let attempts = p.and_then(|p| p.push_attempts).unwrap_or(1).max(1);
        let wait =
            Duration::from_millis(p.and_then(|p| p.push_retry_interval_millis).unwrap_or(1000));
        let copy = p
            .and_then(|p| p.copy_to_deep_store_for_metadata_push)
            .unwrap_or(false);
        for c in &self.spec.pinot_cluster_specs {
            let base = c.controller_uri.trim_end_matches('/');
            for b in tars {
                let mut last = None;
                for attempt in 1..=attempts {
                    match self.push_one(base, how, b, copy).await {
                        Ok(msg) => {
                            eprintln!("pushed {} to {base}: {msg}", b.name);
                            last = None;
                            break;
                        }
                        Err((retry, e)) => {
                            last = Some(e);
                            if !retry || attempt == attempts {
                                break;
                            }
                            tokio::time::sleep(wait).await;
                        }
                    }
                }
                if let Some(e) = last {
                    bail!("push of segment {} to {base} failed: {e}", b.name);
                }
            }
        }
        Ok(())
    }

    async fn push_one(
        &self,
        base: &str,
        how: Push,
        b: &Built,
        copy: bool,
    ) -> std::result::Result<String, (bool, anyhow::Error)> {
        let table = self.table.name().as_str();
        let url = format!("{base}/v2/segments?tableName={table}&tableType=OFFLINE");
        let fail = |e: anyhow::Error| (false, e);
        let req = match how {
            Push::Tar => {
                let f = tokio::fs::File::open(&b.local)
                    .await
                    .map_err(|e| fail(e.into()))?;
                let len = f.metadata().await.map_err(|e| fail(e.into()))?.len();
                let part =
                    reqwest::multipart::Part::stream_with_length(reqwest::Body::from(f), len)
                        .file_name(format!("{}.tar.gz", b.name))
                        .mime_str("application/octet-stream")
                        .map_err(|e| fail(e.into()))?;
                self.http
                    .post(&url)
                    .multipart(reqwest::multipart::Form::new().part(b.name.clone(), part))
            }
            Push::Uri => self
                .http
                .post(&url)
                .header("UPLOAD_TYPE", "URI")
                .header("DOWNLOAD_URI", self.push_uri(b))
                .header("Content-Type", "application/json"),
            Push::Metadata => {
                let m = self.work.path().join(format!("{}.metadata.tar.gz", b.name));
                tarball::write_tar(&b.meta, None, &m).map_err(|e| fail(e.into()))?;
                let bytes = std::fs::read(&m).map_err(|e| fail(e.into()))?;
                let part = reqwest::multipart::Part::bytes(bytes)
                    .file_name(format!("{}.metadata.tar.gz", b.name))
                    .mime_str("application/octet-stream")
                    .map_err(|e| fail(e.into()))?;
                self.http
                    .post(&url)
                    .header("UPLOAD_TYPE", "METADATA")
                    .header("DOWNLOAD_URI", self.push_uri(b))
                    .header("COPY_SEGMENT_TO_DEEP_STORE", copy.to_string())
                    .multipart(reqwest::multipart::Form::new().part(b.name.clone(), part))
            }
            Push::None => return Ok(String::new()),
        };
        let resp = req.send().await.map_err(|e| (true, anyhow!("{e}")))?;
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        let msg = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.get("status").or(v.get("error")).map(text))
            .unwrap_or(body);
        if status.is_success() {
            Ok(msg)
        } else {
            Err((status.is_server_error(), anyhow!("HTTP {status}: {msg}")))
        }
    }
}

/// A local path for `uri` (a plain path or `file:` URI), or `None` for a remote URI.
fn local_path(uri: &str) -> Option<PathBuf> {
    if let Some(rest) = uri.strip_prefix("file://") {
        return Some(PathBuf::from(rest));
    }
    if let Some(rest) = uri.strip_prefix("file:") {
        return Some(PathBuf::from(rest));
    }
    (!uri.contains("://")).then(|| PathBuf::from(uri))
}

fn url_parts(uri: &str) -> Option<(String, String)> {
    let (scheme, rest) = uri.split_once("://")?;
    let host = rest.split('/').next()?;
    Some((scheme.to_ascii_lowercase(), host.to_string()))
}

/// `glob:...` (Java's PathMatcher syntax, which the glob crate follows for `*`, `**`, `?`,
/// `[...]`; `{a,b}` is not supported).
fn pattern(p: Option<&str>, key: &str) -> Result<Option<glob::Pattern>> {
    let Some(p) = p else { return Ok(None) };
    let g = match p.split_once(':') {
        Some(("glob", g)) => g,
        Some(("regex", _)) => bail!("{key} '{p}': regex patterns are not supported; use glob:"),
        _ => p,
    };
    glob::Pattern::new(g)
        .map(Some)
        .map_err(|e| anyhow!("{key} '{p}': {e}"))
}

fn list_local(dir: &Path, recursive: bool) -> Result<Vec<PathBuf>> {
    let dir = dir
        .canonicalize()
        .with_context(|| format!("'{}'", dir.display()))?;
    let mut out = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("'{}'", d.display()))? {
            let p = e?.path();
            if p.is_dir() {
                if recursive {
                    stack.push(p);
                }
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pinot's `examples/batch/airlineStats/ingestionJobSpec.yaml`, as Pinot ships it.
    const AIRLINE_SPEC: &str = "
executionFrameworkSpec:
  name: 'standalone'
  segmentGenerationJobRunnerClassName: 'org.apache.pinot.plugin.ingestion.batch.standalone.SegmentGenerationJobRunner'
  segmentTarPushJobRunnerClassName: 'org.apache.pinot.plugin.ingestion.batch.standalone.SegmentTarPushJobRunner'
  segmentUriPushJobRunnerClassName: 'org.apache.pinot.plugin.ingestion.batch.standalone.SegmentUriPushJobRunner'
  segmentMetadataPushJobRunnerClassName: 'org.apache.pinot.plugin.ingestion.batch.standalone.SegmentMetadataPushJobRunner'
jobType: SegmentCreationAndTarPush
inputDirURI: 'examples/batch/airlineStats/rawdata'
includeFileNamePattern: 'glob:**/*.avro'
outputDirURI: 'examples/batch/airlineStats/segments'
segmentCreationJobParallelism: 4
overwriteOutput: true
pinotFSSpecs:
  - scheme: file
    className: org.apache.pinot.spi.filesystem.LocalPinotFS
recordReaderSpec:
  dataFormat: 'avro'
  className: 'org.apache.pinot.plugin.inputformat.avro.AvroRecordReader'
tableSpec:
  tableName: 'airlineStats'
  schemaURI: 'http://localhost:9000/tables/airlineStats/schema'
  tableConfigURI: 'http://localhost:9000/tables/airlineStats'
pinotClusterSpecs:
  - controllerURI: 'http://localhost:9000'
pushJobSpec:
  pushAttempts: 2
  pushRetryIntervalMillis: 1000
";

    #[test]
    fn pinots_example_spec_parses_and_a_typo_is_named() {
        let spec: JobSpec = serde_norway::from_str(AIRLINE_SPEC).unwrap();
        assert_eq!(spec.job_type, "SegmentCreationAndTarPush");
        assert_eq!(
            spec.input_dir_uri.as_deref(),
            Some("examples/batch/airlineStats/rawdata")
        );
        assert_eq!(spec.table_spec.table_name, "airlineStats");
        assert_eq!(spec.segment_creation_job_parallelism, Some(4));
        assert_eq!(spec.push_job_spec.and_then(|p| p.push_attempts), Some(2));
        let typo = AIRLINE_SPEC.replace("overwriteOutput", "overwriteOuptut");
        let e = serde_norway::from_str::<JobSpec>(&typo)
            .unwrap_err()
            .to_string();
        assert!(e.contains("overwriteOuptut"), "{e}");
    }

    #[test]
    fn templates_patterns_and_job_types() {
        let v = BTreeMap::from([("dir".to_string(), "/data".to_string())]);
        assert_eq!(render("in: ${dir}/x", &v).unwrap(), "in: /data/x");
        assert!(render("in: ${nope}", &v)
            .unwrap_err()
            .to_string()
            .contains("nope"));
        let p = pattern(Some("glob:**/*.avro"), "k").unwrap().unwrap();
        assert!(p.matches("/a/b/c.avro"));
        assert!(!p.matches("/a/b/c.csv"));
        assert!(pattern(Some("regex:.*"), "k").is_err());
        assert_eq!(
            job_type("SegmentCreationAndUriPush").unwrap(),
            (true, Push::Uri)
        );
        assert!(job_type("SegmentCreationAndPush").is_err());
        assert_eq!(local_path("file:///x/y"), Some(PathBuf::from("/x/y")));
        assert_eq!(local_path("s3://b/k"), None);
    }
}
