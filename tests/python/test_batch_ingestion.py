"""Batch data: Pinot's airline Avro data through `riffle LaunchDataIngestionJob` into OFFLINE
tables by tar push, URI push (from a local HTTP server and from an S3-compatible server,
moto) and metadata push; each table answers COUNT(*) and Pinot's 200-query file as DuckDB
answers it over the same rows (the stream-ingested table of test_airline.py answers the
same way, so batch and stream agree). Segment download, re-push (no change) and replace,
restart, and the refusals: a corrupt tar, a segment built for another table, a URI that
cannot be fetched or points outside the allowed directories, each a 4xx that changes
nothing.
"""

from __future__ import annotations

import functools
import http.server
import io
import json
import os
import re
import subprocess
import tarfile
import threading
import time
import urllib.request
from pathlib import Path

import fastavro
import pytest

from riffle_harness import REPO, Riffle, free_ports, run_riffle, wait_until
from test_airline import avro_rows, broker_query, duck_reference, duck_sql, load_queries, mismatch, schema_fields

AIRLINE = REPO / "tests" / "data" / "airline"
FILES = 3


def moto_binary() -> Path:
    env = os.environ.get("RIFFLE_MOTO")
    if env:
        return Path(env)
    tools = Path(os.environ.get("RIFFLE_TOOLS", Path.home() / ".cache" / "riffle" / "tools"))
    return tools / "moto-5.2.5" / "bin" / "moto_server"


class Moto:
    def __init__(self, log: Path):
        self.port = free_ports(1)[0]
        self.out = open(log, "wb")
        self.proc = subprocess.Popen(
            [str(moto_binary()), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self.out,
            stderr=subprocess.STDOUT,
        )
        wait_until("moto answers", self._up, bool, 30)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _up(self) -> bool:
        try:
            urllib.request.urlopen(self.url, timeout=1).read()
            return True
        except Exception:
            return False

    def bucket(self, name: str) -> None:
        req = urllib.request.Request(f"{self.url}/{name}", method="PUT")
        urllib.request.urlopen(req, timeout=5).read()

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.out.close()


class FileServer:
    """A plain HTTP server over one directory (no range requests, as simple servers do)."""

    def __init__(self, root: Path):
        handler = functools.partial(QuietHandler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self) -> None:
        self.httpd.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def write_avro_files(rows: list[dict], d: Path) -> None:
    """The airline rows split over FILES Avro files (one segment each)."""
    with open(AIRLINE / "airlineStats_data.avro", "rb") as f:
        schema = fastavro.reader(f).writer_schema
    d.mkdir(parents=True)
    for i in range(FILES):
        with open(d / f"part-{i}.avro", "wb") as out:
            fastavro.writer(out, schema, rows[i::FILES], codec="deflate")


def offline_config(table: str) -> dict:
    config = json.loads((AIRLINE / "airlineStats_realtime_table_config.json").read_text())
    config["tableName"] = table
    config["tableType"] = "OFFLINE"
    del config["ingestionConfig"]["streamIngestionConfig"]
    config["ingestionConfig"]["batchIngestionConfig"] = {
        "segmentIngestionType": "APPEND",
        "segmentIngestionFrequency": "DAILY",
    }
    return config


def add_table(r: Riffle, table: str) -> None:
    schema = json.loads((AIRLINE / "airlineStats_schema.json").read_text())
    schema["schemaName"] = table
    status, body = r.post("/schemas", schema)
    assert status == 200, body
    status, body = r.post("/tables", offline_config(table))
    assert status == 200, body


def job_spec(r: Riffle, table: str, job_type: str, inputs: Path, output: str, extra: str = "") -> str:
    return f"""
executionFrameworkSpec:
  name: 'standalone'
  segmentGenerationJobRunnerClassName: 'org.apache.pinot.plugin.ingestion.batch.standalone.SegmentGenerationJobRunner'
  segmentTarPushJobRunnerClassName: 'org.apache.pinot.plugin.ingestion.batch.standalone.SegmentTarPushJobRunner'
jobType: {job_type}
inputDirURI: '{inputs}'
includeFileNamePattern: 'glob:**/*.avro'
outputDirURI: '{output}'
overwriteOutput: true
recordReaderSpec:
  dataFormat: 'avro'
  className: 'org.apache.pinot.plugin.inputformat.avro.AvroRecordReader'
tableSpec:
  tableName: '{table}'
  schemaURI: '{r.controller_url}/tables/{table}/schema'
  tableConfigURI: '{r.controller_url}/tables/{table}'
pinotClusterSpecs:
  - controllerURI: '{r.controller_url}'
pushJobSpec:
  pushAttempts: 2
  pushRetryIntervalMillis: 500
{extra}
"""


def run_job(tmp: Path, spec: str) -> subprocess.CompletedProcess:
    path = tmp / f"job-{time.monotonic_ns()}.yaml"
    path.write_text(spec)
    return run_riffle("LaunchDataIngestionJob", "-jobSpecFile", str(path))


def query_file_failures(r: Riffle, con, table: str) -> list[str]:
    failures = []
    for n, q in enumerate(load_queries()):
        sql = re.sub(r"\bmytable\b", table, q["sql"])
        answer = broker_query(r, sql)
        if answer.get("exceptions"):
            failures.append(f"#{n} {sql}\n    error: {answer['exceptions'][0].get('message', '')[:300]}")
            continue
        why = mismatch(q["sql"], answer["resultTable"]["rows"], con.execute(duck_sql(q)).fetchall())
        if why:
            failures.append(f"#{n} {sql}\n    {why}")
    return failures


def segments(r: Riffle, table: str) -> list[str]:
    listed = r.get_json(f"/segments/{table}?type=OFFLINE")
    return sorted(listed[0]["OFFLINE"]) if listed else []


def upload(r: Riffle, query: str, body: bytes = b"", headers: dict | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(
        f"{r.controller_url}/v2/segments?{query}",
        data=body,
        headers={"Content-Type": "application/octet-stream", **(headers or {})},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    base = tmp_path_factory.mktemp("batch")
    rows = avro_rows()
    con = duck_reference(rows, schema_fields(), base)
    inputs = base / "inputs"
    write_avro_files(rows, inputs)
    shared = base / "shared"
    shared.mkdir()
    moto = Moto(base / "moto.log")
    files = FileServer(Path("/"))
    r = Riffle(base / "data", base, name="batch")
    r.extra_args = [
        "--fetch-file-root",
        str(shared),
        "--segment-fetcher-option",
        f"s3.endpoint={moto.url}",
        "--segment-fetcher-option",
        "s3.region=us-east-1",
        "--segment-fetcher-option",
        "s3.accessKey=riffle",
        "--segment-fetcher-option",
        "s3.secretKey=riffle",
    ]
    try:
        moto.bucket("batch")
        r.start()
        yield {"r": r, "con": con, "rows": rows, "inputs": inputs, "shared": shared,
               "moto": moto, "files": files, "base": base}
    finally:
        r.kill()
        files.stop()
        moto.stop()


def check_table(b, table: str) -> None:
    r = b["r"]
    assert r.count(table) == len(b["rows"])
    assert len(segments(r, table)) == FILES
    failures = query_file_failures(r, b["con"], table)
    assert not failures, f"{len(failures)} of 200 differ on {table}:\n" + "\n".join(failures)


def test_tar_push_answers_the_query_file_and_survives_a_restart(batch):
    r, base = batch["r"], batch["base"]
    add_table(r, "airlineTar")
    out = base / "out-tar"
    done = run_job(base, job_spec(r, "airlineTar", "SegmentCreationAndTarPush", batch["inputs"], str(out)))
    assert done.returncode == 0, done.stderr
    assert "rows/s" in done.stderr, done.stderr
    assert len(list(out.glob("*.tar.gz"))) == FILES
    # Pinot's simple names: table with type, min and max time, sequence.
    names = segments(r, "airlineTar")
    assert all(re.fullmatch(r"airlineTar_OFFLINE_\d+_\d+_[0-2]", n) for n in names), names
    check_table(batch, "airlineTar")
    r.kill()
    r.start()
    assert r.count("airlineTar") == len(batch["rows"])
    assert segments(r, "airlineTar") == names


def test_uri_push_from_an_http_server(batch):
    r, base, files = batch["r"], batch["base"], batch["files"]
    add_table(r, "airlineHttp")
    out = base / "out-http"
    # Pinot's rule: the pushed URI is segmentUriPrefix + the tar's path + segmentUriSuffix
    # (the test's HTTP server serves the file system from its root).
    extra = f"  segmentUriPrefix: '{files.url}'\n  segmentUriSuffix: ''\n"
    done = run_job(base, job_spec(r, "airlineHttp", "SegmentCreationAndUriPush", batch["inputs"], str(out), extra))
    assert done.returncode == 0, done.stderr
    check_table(batch, "airlineHttp")
    meta = r.get_json(f"/segments/airlineHttp/{segments(r, 'airlineHttp')[0]}/metadata")
    assert files.url in json.dumps(meta), meta


def test_uri_push_from_s3(batch):
    r, base, moto = batch["r"], batch["base"], batch["moto"]
    add_table(r, "airlineS3")
    extra = f"""pinotFSSpecs:
  - scheme: s3
    className: org.apache.pinot.plugin.filesystem.S3PinotFS
    configs:
      region: 'us-east-1'
      endpoint: '{moto.url}'
      accessKey: 'riffle'
      secretKey: 'riffle'
"""
    spec = job_spec(r, "airlineS3", "SegmentCreationAndUriPush", batch["inputs"], "s3://batch/airline/segments") + extra
    done = run_job(base, spec)
    assert done.returncode == 0, done.stderr
    check_table(batch, "airlineS3")
    meta = r.get_json(f"/segments/airlineS3/{segments(r, 'airlineS3')[0]}/metadata")
    assert "s3://batch/airline/segments/" in json.dumps(meta), meta
    # A push-only job finds the tars already there and pushes them again: nothing changes.
    again = spec.replace("SegmentCreationAndUriPush", "SegmentUriPush")
    done = run_job(base, again)
    assert done.returncode == 0, done.stderr
    assert r.count("airlineS3") == len(batch["rows"])


def test_metadata_push(batch):
    r, base = batch["r"], batch["base"]
    add_table(r, "airlineMeta")
    out = batch["shared"] / "meta"
    done = run_job(base, job_spec(r, "airlineMeta", "SegmentCreationAndMetadataPush", batch["inputs"], str(out)))
    assert done.returncode == 0, done.stderr
    check_table(batch, "airlineMeta")


def test_download_repush_and_replace(batch):
    r, base = batch["r"], batch["base"]
    total = len(batch["rows"])
    name = segments(r, "airlineTar")[0]
    with urllib.request.urlopen(f"{r.controller_url}/segments/airlineTar/{name}", timeout=30) as resp:
        assert resp.headers["Content-Disposition"] == f"attachment; filename={name}.tar.gz"
        tar = resp.read()
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        members = {m.name for m in t.getmembers()}
        props = t.extractfile(f"{name}/v3/metadata.properties").read().decode()
    assert {f"{name}/v3/metadata.properties", f"{name}/v3/creation.meta", f"{name}/v3/segment.riffle"} <= members
    assert f"segment.name = {name}" in props
    # The same segment again: nothing changes.
    status, body = upload(r, "tableName=airlineTar&allowRefresh=false", tar)
    assert status == 200, body
    assert r.count("airlineTar") == total

    # A segment with a fixed name, then a smaller one of the same name replaces it.
    fixed = "  \nsegmentNameGeneratorSpec:\n  type: fixed\n  configs:\n    segment.name: 'extra_seg'\n"
    with open(AIRLINE / "airlineStats_data.avro", "rb") as f:
        schema = fastavro.reader(f).writer_schema
    tars = []
    for n in (100, 40):
        d = base / f"extra-{n}"
        d.mkdir()
        with open(d / "part.avro", "wb") as out:
            fastavro.writer(out, schema, batch["rows"][:n])
        out_dir = base / f"out-extra-{n}"
        done = run_job(base, job_spec(r, "airlineTar", "SegmentCreationAndTarPush", d, str(out_dir)) + fixed)
        assert done.returncode == 0, done.stderr
        assert r.count("airlineTar") == total + n
        tars.append((out_dir / "extra_seg.tar.gz").read_bytes())
    assert segments(r, "airlineTar").count("extra_seg") == 1
    # Refresh not permitted: 409, and the stored one stays.
    status, body = upload(r, "tableName=airlineTar&allowRefresh=false", tars[0])
    assert status == 409, body
    assert r.count("airlineTar") == total + 40
    with urllib.request.urlopen(urllib.request.Request(
            f"{r.controller_url}/segments/airlineTar/extra_seg", method="DELETE"), timeout=30) as resp:
        assert resp.status == 200
    assert r.count("airlineTar") == total


def test_bad_pushes_are_4xx_and_change_nothing(batch):
    r = batch["r"]
    before = (segments(r, "airlineTar"), r.count("airlineTar"))
    name = before[0][0]
    with urllib.request.urlopen(f"{r.controller_url}/segments/airlineTar/{name}", timeout=30) as resp:
        good = resp.read()
    cases = [
        ("corrupt tar", "tableName=airlineTar", b"\x1f\x8b" + os.urandom(5000), {}),
        ("truncated tar", "tableName=airlineTar", good[: len(good) // 2], {}),
        ("wrong table", "tableName=people", good, {}),
        ("segment built for another table", "tableName=airlineHttp", good, {}),
        ("unfetchable URI", "tableName=airlineTar", b"", {"UPLOAD_TYPE": "URI", "DOWNLOAD_URI": "http://127.0.0.1:1/x.tar.gz"}),
        ("missing object", "tableName=airlineTar", b"", {"UPLOAD_TYPE": "URI", "DOWNLOAD_URI": f"{batch['files'].url}/nope.tar.gz"}),
        ("outside the allowed roots", "tableName=airlineTar", b"", {"UPLOAD_TYPE": "URI", "DOWNLOAD_URI": "file:///etc/passwd"}),
        ("no DOWNLOAD_URI", "tableName=airlineTar", b"", {"UPLOAD_TYPE": "URI"}),
        ("a REALTIME table type", "tableName=airlineTar&tableType=REALTIME", good, {}),
    ]
    for what, query, body, headers in cases:
        status, answer = upload(r, query, body, headers)
        assert 400 <= status < 500, f"{what}: {status} {answer}"
        assert answer.get("error"), f"{what}: {answer}"
        assert (segments(r, "airlineTar"), r.count("airlineTar")) == before, what
    status, answer = upload(r, "tableName=airlineTar", good[:100])
    assert status == 400 and "tar" in answer["error"], answer


def test_ingest_from_file(batch):
    r = batch["r"]
    schema = {
        "schemaName": "small",
        "dimensionFieldSpecs": [{"name": "id", "dataType": "INT"}, {"name": "city", "dataType": "STRING"}],
        "metricFieldSpecs": [{"name": "n", "dataType": "LONG"}],
    }
    assert r.post("/schemas", schema)[0] == 200
    table = {"tableName": "small", "tableType": "OFFLINE", "segmentsConfig": {}, "tenants": {},
             "tableIndexConfig": {}, "metadata": {}}
    assert r.post("/tables", table)[0] == 200
    data = "id,city,n\n1,paris,3\n2,oslo,4\n"
    cfg = urllib.parse.quote(json.dumps({"inputFormat": "csv"}))
    req = urllib.request.Request(
        f"{r.controller_url}/ingestFromFile?tableNameWithType=small_OFFLINE&batchConfigMapStr={cfg}",
        data=data.encode(), method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        body = json.loads(resp.read())
    assert "Successfully ingested file into table: small_OFFLINE" in body["status"], body
    assert r.query("SELECT SUM(n) FROM small") == [[7.0]]


@pytest.mark.parametrize(
    "point,kept",
    [("push.after_upload", False), ("catalog.inside_push", False), ("push.after_record", True)],
)
def test_a_push_killed_midway_leaves_all_or_nothing(tmp_path, point, kept):
    """The server dies at each step of a push: after a restart the segment is there with
    every row (the catalog recorded it) or absent (it did not), and pushing again works."""
    rows = avro_rows()[:500]
    inputs = tmp_path / "in"
    inputs.mkdir()
    with open(AIRLINE / "airlineStats_data.avro", "rb") as f:
        schema = fastavro.reader(f).writer_schema
    with open(inputs / "part.avro", "wb") as out:
        fastavro.writer(out, schema, rows)
    r = Riffle(tmp_path / "data", tmp_path, name="pushkill")
    try:
        r.start()
        add_table(r, "airlineKill")
        out = tmp_path / "out"
        spec = job_spec(r, "airlineKill", "SegmentCreation", inputs, str(out))
        assert run_job(tmp_path, spec).returncode == 0
        (tar,) = list(out.glob("*.tar.gz"))
        r.kill()
        r.extra_env = {"RIFFLE_FAILPOINTS": point}
        r.start()
        try:
            upload(r, "tableName=airlineKill", tar.read_bytes())
        except Exception:
            pass  # the connection dies with the server
        assert r.wait_exit(30) != 0, f"the server did not stop at {point}"
        r.extra_env = {}
        r.start()
        assert r.count("airlineKill") == (len(rows) if kept else 0)
        assert len(segments(r, "airlineKill")) == (1 if kept else 0)
        status, body = upload(r, "tableName=airlineKill", tar.read_bytes())
        assert status == 200, body
        assert r.count("airlineKill") == len(rows)
        # What a restart finds stays: the segment loads again, every row.
        r.kill()
        r.start()
        assert r.count("airlineKill") == len(rows)
    finally:
        r.kill()
