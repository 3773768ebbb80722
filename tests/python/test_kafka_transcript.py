"""The seed's transcript example through Kafka, queried through pinotdb.

A Tansu broker (Kafka-compatible, installed by `scripts/tansu.sh`; `$RIFFLE_TANSU` points
at the binary) on a free loopback port; the topic `transcript-topic` gets the 12 rows of
`examples/transcript/transcript.jsonl` through Tansu's own producer (`tansu cat produce`,
so no Python Kafka client is needed); the table is added with `riffle AddTable` from
`examples/transcript/transcript_realtime_table_config.json` changed only in
`stream.kafka.broker.list`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

from riffle_harness import (
    TRANSCRIPT_DIR,
    TRANSCRIPT_SCHEMA,
    TRANSCRIPT_TOPIC,
    Riffle,
    expected_transcript_averages,
    free_ports,
    transcript_lines,
)

TANSU_VERSION = "0.6.0"
TRANSCRIPT_REALTIME_TABLE = TRANSCRIPT_DIR / "transcript_realtime_table_config.json"


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
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"tansu exited with {self.proc.returncode}:\n{self.log.read_text(errors='replace')}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"tansu did not listen on port {self.port} within 20 s")
                time.sleep(0.05)

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


@pytest.fixture
def tansu(tmp_path: Path, request) -> Iterator[Tansu]:
    t = Tansu(tmp_path)
    # The broker's log goes into the failure report too (see conftest.py).
    request.node.riffle_logs = [t.log]
    try:
        yield t
    finally:
        t.kill()


def test_transcript_through_kafka(tansu: Tansu, riffle_factory, tmp_path: Path):
    lines = transcript_lines()
    assert len(lines) == 12

    # The topic, and the rows as record values: `tansu cat produce` reads one JSON object
    # per line and sends its "value" member (re-encoded as JSON) as the record's value.
    tansu.run("topic", "create", "--broker", tansu.url, "--partitions", "1", TRANSCRIPT_TOPIC)
    produced = "".join(json.dumps({"value": json.loads(l)}) + "\n" for l in lines)
    tansu.run("cat", "produce", "--broker", tansu.url, "--partition", "0", TRANSCRIPT_TOPIC, stdin=produced)

    # The seed's realtime table config, only the broker list changed.
    table = json.loads(TRANSCRIPT_REALTIME_TABLE.read_text(encoding="utf-8"))
    stream = table["tableIndexConfig"]["streamConfigs"]
    assert stream["stream.kafka.topic.name"] == TRANSCRIPT_TOPIC
    stream["stream.kafka.broker.list"] = tansu.bootstrap
    table_file = tmp_path / "transcript_realtime_table_config.json"
    table_file.write_text(json.dumps(table, indent=2), encoding="utf-8")

    r: Riffle = riffle_factory()
    r.start()
    out = r.admin(
        "AddTable",
        "-schemaFile",
        str(TRANSCRIPT_SCHEMA),
        "-tableConfigFile",
        str(table_file),
        "-controllerHost",
        "127.0.0.1",
        "-controllerPort",
        str(r.controller_port),
        "-exec",
    )
    assert "successfully added" in out, out

    r.wait_count("transcript", 12)
    assert r.query("SELECT COUNT(*) FROM transcript") == [[12]]

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

    # Nothing more arrives: each record was read once.
    time.sleep(1.0)
    assert r.count("transcript") == 12
    assert r.query("SELECT studentID, subject FROM transcript WHERE lastName = 'Young'") == [[212, "History"]]
