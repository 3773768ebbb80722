"""Helpers for the Python end-to-end tests: the real `riffle` binary on free loopback
ports, driven through Pinot's own Python client (pinotdb) and its SQLAlchemy dialect.

The binary is `$RIFFLE_BIN`, else `debug/riffle` under `$CARGO_TARGET_DIR`, else under the
shared build directory `~/.cache/riffle/target`, else under `<repo>/target`.
`scripts/test.sh` builds it and sets `RIFFLE_BIN`.

Each server writes its log (stderr) and stdout to files in the test's temporary directory;
when a test fails, the logs of the servers it used are added to the failure report.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Optional

import pinotdb
import pytest

REPO = Path(__file__).resolve().parents[2]
TRANSCRIPT_DIR = REPO / "examples" / "transcript"
TRANSCRIPT_SCHEMA = TRANSCRIPT_DIR / "transcript_schema.json"
TRANSCRIPT_TABLE = TRANSCRIPT_DIR / "transcript_file_table_config.json"
TRANSCRIPT_ROWS = TRANSCRIPT_DIR / "transcript.jsonl"
TRANSCRIPT_TOPIC = "transcript-topic"

# Upper bounds; the usual case is far below them.
START_TIMEOUT_S = 20.0
WAIT_TIMEOUT_S = 20.0


def riffle_bin() -> Path:
    """The `riffle` binary under test."""
    env = os.environ.get("RIFFLE_BIN")
    if env:
        p = Path(env)
        if not p.is_file():
            raise RuntimeError(f"RIFFLE_BIN={env} does not exist; build it with `cargo build -p riffle`")
        return p
    candidates = []
    if os.environ.get("CARGO_TARGET_DIR"):
        candidates.append(Path(os.environ["CARGO_TARGET_DIR"]) / "debug" / "riffle")
    candidates.append(Path.home() / ".cache" / "riffle" / "target" / "debug" / "riffle")
    candidates.append(REPO / "target" / "debug" / "riffle")
    for c in candidates:
        if c.is_file():
            return c
    raise RuntimeError(
        "no riffle binary found (looked at "
        + ", ".join(str(c) for c in candidates)
        + "); run ./scripts/test.sh or set RIFFLE_BIN"
    )


def free_ports(n: int) -> list[int]:
    """`n` distinct free TCP ports on 127.0.0.1 (held open together while choosing)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def server_env() -> dict:
    """The environment of a riffle process: plain (uncoloured) logs at `info` unless
    RIFFLE_LOG says otherwise."""
    return {**os.environ, "NO_COLOR": "1", "RIFFLE_LOG": os.environ.get("RIFFLE_LOG", "info")}


# The CA of the test certificate (tests/data/tls), trusted for https URLs.
TLS_DIR = Path(__file__).resolve().parent.parent / "data" / "tls"


def _tls_context():
    import ssl

    return ssl.create_default_context(cafile=str(TLS_DIR / "ca.pem"))


def http_get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    """GET a URL; returns (status, body). Connection errors raise OSError."""
    try:
        ctx = _tls_context() if url.startswith("https:") else None
        with urllib.request.urlopen(url, timeout=timeout, context=ctx) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def wait_until(
    what: str,
    probe: Callable[[], object],
    ok: Callable[[object], bool],
    timeout: float = WAIT_TIMEOUT_S,
    interval: float = 0.1,
):
    """Calls `probe` until `ok(result)`; returns the result. On timeout fails with the last
    result or exception."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            last = probe()
            if ok(last):
                return last
        except Exception as e:  # noqa: BLE001 - any failure is retried until the deadline
            last = e
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; last result: {last!r}")
        time.sleep(interval)


def append_lines(path: Path, lines: list[str]) -> None:
    """Appends complete lines to a stream partition file (creating its directory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        for line in lines:
            f.write(line.rstrip("\n") + "\n")


def transcript_lines() -> list[str]:
    return [l for l in TRANSCRIPT_ROWS.read_text(encoding="utf-8").splitlines() if l.strip()]


class Riffle:
    """One `riffle serve` process."""

    def __init__(self, data_dir: Path, log_dir: Path, name: str = "riffle"):
        self.data_dir = data_dir
        self.log_dir = log_dir
        self.name = name
        self.proc: Optional[subprocess.Popen] = None
        self.controller_port = 0
        self.broker_port = 0
        self.logs: list[Path] = []
        self._starts = 0
        # Extra `serve` flags and environment (e.g. RIFFLE_FAILPOINTS) for the next starts.
        self.extra_args: list[str] = []
        self.extra_env: dict[str, str] = {}

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, ports: Optional[tuple[int, int]] = None) -> "Riffle":
        """Starts the server (on `ports`, else on fresh free ports) and waits until both
        APIs answer `GET /health`. A port taken meanwhile is retried with fresh ports."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        last_error = ""
        for attempt in range(3):
            if ports is None or attempt > 0:
                ports = tuple(free_ports(2))  # type: ignore[assignment]
            self.controller_port, self.broker_port = ports  # type: ignore[misc]
            self._starts += 1
            log = self.log_dir / f"{self.name}-{self._starts}.log"
            self.logs.append(log)
            with open(log, "wb") as out:
                self.proc = subprocess.Popen(
                    [
                        str(riffle_bin()),
                        "serve",
                        "--data-dir",
                        str(self.data_dir),
                        "--host",
                        "127.0.0.1",
                        "--controller-port",
                        str(self.controller_port),
                        "--broker-port",
                        str(self.broker_port),
                        *self.extra_args,
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env={**server_env(), **self.extra_env},
                )
            if self._wait_healthy():
                return self
            text = log.read_text(errors="replace")
            last_error = text[-2000:]
            self.kill()
            if "cannot listen" not in text:
                break
        pytest.fail(f"riffle serve did not become healthy; log tail:\n{last_error}")

    def _wait_healthy(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT_S
        pending = {self.controller_url, self.broker_url}
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            for base in list(pending):
                try:
                    status, _ = http_get(base + "/health", timeout=1.0)
                    if status == 200:
                        pending.discard(base)
                except OSError:
                    pass
            if not pending:
                return True
            time.sleep(0.05)
        return False

    def wait_exit(self, timeout: float) -> int:
        """Waits for the process to end by itself (e.g. at a failpoint); its return code."""
        assert self.proc is not None
        rc = self.proc.wait(timeout=timeout)
        self.proc = None
        return rc

    def post(self, path: str, body: Optional[dict] = None, method: str = "POST") -> tuple[int, dict]:
        """POSTs (or PUTs, with `method`) JSON to the controller."""
        req = urllib.request.Request(
            self.controller_url + path,
            data=json.dumps(body or {}).encode(),
            headers={"Content-Type": "application/json"},
            method=method,
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def get_json(self, path: str) -> dict:
        status, text = http_get(self.controller_url + path, timeout=10.0)
        assert status == 200, f"GET {path}: {status} {text}"
        return json.loads(text)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Sends `sig` (SIGKILL: a crash, nothing flushed) and reaps the process."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    # -- addresses and clients ------------------------------------------------------------

    @property
    def scheme(self) -> str:
        """`https` when the server was given `--tls-cert`."""
        return "https" if "--tls-cert" in self.extra_args else "http"

    @property
    def controller_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.controller_port}"

    @property
    def broker_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.broker_port}"

    def connect(self):
        """A pinotdb DB-API connection to the broker."""
        return pinotdb.connect(host="127.0.0.1", port=self.broker_port, path="/query/sql", scheme="http")

    def query(self, sql: str, params: Optional[dict] = None) -> list[list]:
        """Runs SQL through pinotdb and returns all rows."""
        conn = self.connect()
        try:
            cur = conn.cursor()
            cur.execute(sql, params)
            return [list(r) for r in cur.fetchall()]
        finally:
            conn.close()

    def count(self, table: str) -> int:
        return int(self.query(f"SELECT COUNT(*) FROM {table}")[0][0])

    def wait_count(self, table: str, n: int, timeout: float = WAIT_TIMEOUT_S) -> None:
        wait_until(f"COUNT(*) FROM {table} == {n}", lambda: self.count(table), lambda c: c == n, timeout)

    def stream_file(self, topic: str, partition: int = 0) -> Path:
        """The file-stream partition file `<data>/streams/<topic>/<partition>.jsonl`."""
        return self.data_dir / "streams" / topic / f"{partition}.jsonl"

    # -- admin commands -------------------------------------------------------------------

    def admin(self, *args: str, timeout: float = 30.0) -> str:
        """Runs a Pinot-style admin command of the binary; fails the test unless it exits 0.
        Returns stdout and stderr together."""
        r = subprocess.run(
            [str(riffle_bin()), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        out = r.stdout + r.stderr
        assert r.returncode == 0, f"riffle {' '.join(args)} exited {r.returncode}:\n{out}"
        return out

    def add_transcript_table_args(self, *extra: str) -> list[str]:
        """The `AddTable` command for the transcript example against this server (`extra`
        flags appended: credentials, protocol)."""
        return [
            "AddTable",
            "-schemaFile",
            str(TRANSCRIPT_SCHEMA),
            "-tableConfigFile",
            str(TRANSCRIPT_TABLE),
            "-controllerHost",
            "127.0.0.1",
            "-controllerPort",
            str(self.controller_port),
            "-exec",
            *extra,
        ]

    def add_transcript_table(self) -> str:
        out = self.admin(*self.add_transcript_table_args())
        assert "successfully added" in out, out
        return out


def run_riffle(*args: str, env: Optional[dict] = None) -> subprocess.CompletedProcess:
    """Runs the binary with `args` (an admin command); its result, whatever the exit code."""
    return subprocess.run(
        [str(riffle_bin()), *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env=env,
    )


def expected_transcript_averages(lines: list[str]) -> dict[str, float]:
    """Per-subject average score, with each score rounded to FLOAT (32-bit) as the column
    stores it."""
    import struct

    sums: dict[str, list[float]] = {}
    for l in lines:
        row = json.loads(l)
        f32 = struct.unpack("f", struct.pack("f", float(row["score"])))[0]
        sums.setdefault(row["subject"], []).append(f32)
    return {k: sum(v) / len(v) for k, v in sums.items()}


def add_table_with_admin(r: "Riffle", schema_file: Path, table_file: Path) -> None:
    """`riffle AddTable` against a running server; fails unless the table was added."""
    out = r.admin(
        "AddTable",
        "-schemaFile", str(schema_file),
        "-tableConfigFile", str(table_file),
        "-controllerHost", "127.0.0.1",
        "-controllerPort", str(r.controller_port),
        "-exec",
    )
    assert "successfully added" in out, out


def check_transcript_averages(r: "Riffle", lines: list[str]) -> None:
    """The per-subject averages of the transcript table through pinotdb equal those of the
    lines, with Pinot's column names."""
    expected = expected_transcript_averages(lines)
    conn = r.connect()
    try:
        cur = conn.cursor()
        cur.execute("SELECT subject, AVG(score) FROM transcript GROUP BY subject")
        got = {row[0]: row[1] for row in cur.fetchall()}
        assert [d[0] for d in cur.description] == ["subject", "avg(score)"]
    finally:
        conn.close()
    assert sorted(got) == sorted(expected), got
    for subject, want in expected.items():
        assert abs(got[subject] - want) < 1e-6, f"{subject}: {got[subject]} != {want}"


def transcript_walkthrough(riffle_factory, tmp_path: Path, stream_configs: dict, publish) -> "Riffle":
    """The seed's transcript walkthrough on any stream. `publish(messages)` writes to the
    stream's one topic: the example's lines first; then the example's table config, with only
    its `streamConfigs` replaced, is added with `riffle AddTable`; the per-subject averages
    match; nothing more arrives by itself; one line published later arrives. Returns the
    running server for the stream's own checks."""
    lines = transcript_lines()
    publish([l.encode() for l in lines])
    table = json.loads((TRANSCRIPT_DIR / "transcript_realtime_table_config.json").read_text(encoding="utf-8"))
    table["tableIndexConfig"]["streamConfigs"] = stream_configs
    table_file = tmp_path / "transcript_stream_table_config.json"
    table_file.write_text(json.dumps(table, indent=2), encoding="utf-8")
    r = riffle_factory()
    r.start()
    add_table_with_admin(r, TRANSCRIPT_SCHEMA, table_file)
    r.wait_count("transcript", 12)
    check_transcript_averages(r, lines)
    time.sleep(1.0)
    assert r.count("transcript") == 12
    publish([json.dumps({**json.loads(lines[0]), "studentID": 999}).encode()])
    r.wait_count("transcript", 13, timeout=10)
    return r


def add_events_table(r: "Riffle", stream_configs: dict) -> None:
    """Adds the table `events` (the transcript schema under that name) reading
    `stream_configs`; fails unless both are accepted."""
    schema = {**json.loads(TRANSCRIPT_SCHEMA.read_text(encoding="utf-8")), "schemaName": "events"}
    status, body = r.post("/schemas", schema)
    assert status == 200, body
    table = {
        "tableName": "events",
        "tableType": "REALTIME",
        "segmentsConfig": {"timeColumnName": "timestampInEpoch", "schemaName": "events", "replication": "1"},
        "tableIndexConfig": {"streamConfigs": stream_configs},
        "tenants": {},
        "metadata": {},
    }
    status, body = r.post("/tables", table)
    assert status == 200, body


def event_rows(ids: range, subject) -> list[bytes]:
    """JSON rows of the `events` table: one per id, `studentID` = id, `subject` =
    `subject(id)`."""
    return [
        json.dumps(
            {"studentID": i, "firstName": "f", "lastName": "l", "gender": "x", "subject": subject(i),
             "score": float(i % 100), "timestampInEpoch": 1_700_000_000_000 + i}
        ).encode()
        for i in ids
    ]



class LoopbackServer:
    """A test server binary (named by an environment variable that scripts/test.sh sets) on
    a free loopback port, its output in `<log_dir>/<name>.log`, waited for until it listens.
    `args(port)` gives its command-line arguments."""

    def __init__(self, name: str, env_var: str, log_dir: Path, args: Callable[[int], list[str]]):
        binary = os.environ.get(env_var)
        assert binary, f"{env_var} is not set: scripts/test.sh installs {name} and sets it"
        (self.port,) = free_ports(1)
        self.log = log_dir / f"{name}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [binary, *args(self.port)],
                cwd=log_dir, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        wait_listening(name, self.proc, self.port, self.log)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


def stream_configs(stream_type: str, keys: dict, extra: Optional[dict] = None) -> dict:
    """A table's streamConfigs for `stream_type`: JSON messages read from the smallest
    offset, `keys` (the stream's own), then `extra`."""
    c = {
        "streamType": stream_type,
        f"stream.{stream_type}.decoder.class.name": "org.apache.pinot.plugin.inputformat.json.JSONMessageDecoder",
        f"stream.{stream_type}.consumer.prop.auto.offset.reset": "smallest",
        "realtime.segment.flush.threshold.time": "3600000",
        "realtime.segment.flush.threshold.rows": "50000",
        **keys,
    }
    c.update(extra or {})
    return c

TANSU_VERSION = "0.6.0"


def tansu_bin() -> Path:
    """`$RIFFLE_TANSU`, else where `scripts/tansu.sh` installs it; fails (never skips) when
    it is missing."""
    env = os.environ.get("RIFFLE_TANSU")
    if env:
        p = Path(env)
    else:
        tools = Path(os.environ.get("RIFFLE_TOOLS") or Path.home() / ".cache" / "riffle" / "tools")
        p = tools / f"tansu-{TANSU_VERSION}" / "tansu"
    if not p.is_file():
        pytest.fail(f"the Tansu broker is not installed at {p}: run scripts/tansu.sh (or set RIFFLE_TANSU)")
    return p


def wait_listening(what: str, proc: subprocess.Popen, port: int, log: Path, timeout: float = 20) -> None:
    """Waits until `proc` (a server started by a test) accepts connections on loopback
    `port`; fails the test with its log if it exits first or does not listen in time."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"{what} did not listen on port {port} within {timeout:.0f} s")
            time.sleep(0.05)


class Tansu:
    """One `tansu broker` process with in-memory storage on a free loopback port."""

    def __init__(self, log_dir: Path):
        self.bin = tansu_bin()
        self.port = free_ports(1)[0]
        self.log = log_dir / f"tansu-{self.port}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    str(self.bin),
                    "broker",
                    "--listener-url",
                    self.url,
                    "--advertised-listener-url",
                    self.url,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "RUST_LOG": "warn"},
            )
        wait_listening("tansu", self.proc, self.port, self.log)

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def run(self, *args: str, stdin: str = "") -> str:
        """Runs a `tansu` client command against this broker; fails the test unless it
        exits 0."""
        r = subprocess.run(
            [str(self.bin), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "RUST_LOG": "warn"},
        )
        out = r.stdout + r.stderr
        assert r.returncode == 0, f"tansu {' '.join(args)} exited {r.returncode}:\n{out}"
        return out

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
