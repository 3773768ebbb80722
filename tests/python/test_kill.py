"""Exactly-once under crashes: the server is killed (SIGKILL) at random moments while a
producer writes and small segments seal, and it is made to abort at each crash point of the
commit protocol. After every restart each message is counted once: no loss, no duplicate.

`RIFFLE_KILLS` sets the number of random kills (20 by default: the CI version; the full run
is `RIFFLE_KILLS=200 scripts/kill-test.sh`)."""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest

from riffle_harness import Riffle, append_lines, wait_until

TOPIC = "kill-topic"
PARTITIONS = 3


def create_table(r: Riffle, name: str, rows_per_segment: int) -> None:
    schema = {
        "schemaName": name,
        "dimensionFieldSpecs": [{"name": "id", "dataType": "LONG"}],
        "metricFieldSpecs": [{"name": "amount", "dataType": "LONG"}],
        "dateTimeFieldSpecs": [{"name": "ts", "dataType": "LONG",
                                "format": "1:MILLISECONDS:EPOCH", "granularity": "1:MILLISECONDS"}],
    }
    table = {
        "tableName": name,
        "tableType": "REALTIME",
        "segmentsConfig": {"timeColumnName": "ts", "replication": "1"},
        "tenants": {},
        "tableIndexConfig": {
            "invertedIndexColumns": ["id"],
            "streamConfigs": {
                "streamType": "file",
                "stream.file.topic.name": TOPIC,
                "stream.file.decoder.class.name":
                    "org.apache.pinot.plugin.stream.kafka.KafkaJSONMessageDecoder",
                "stream.file.consumer.prop.auto.offset.reset": "smallest",
                "realtime.segment.flush.threshold.segment.rows": str(rows_per_segment),
            },
        },
    }
    status, body = r.post("/tableConfigs", {"tableName": name, "schema": schema, "realtime": table})
    assert status == 200, body


def line(i: int) -> str:
    return json.dumps({"id": i, "amount": i * 7 % 1000, "ts": 1_700_000_000_000 + i})


def expected(n: int) -> tuple[int, int, int]:
    return n, n, sum(i * 7 % 1000 for i in range(n))


def totals(r: Riffle, table: str) -> tuple[int, int, int]:
    row = r.query(f"SELECT COUNT(*), COUNT(DISTINCT id), SUM(amount) FROM {table}")[0]
    return int(row[0]), int(row[1]), int(row[2])


def wait_totals(r: Riffle, table: str, n: int, timeout: float = 60.0) -> None:
    want = expected(n)
    wait_until(f"totals of {table} == {want}", lambda: totals(r, table), lambda t: t == want, timeout)
    # Nothing more may arrive: duplicates would show now.
    time.sleep(0.5)
    assert totals(r, table) == want


def committed_chains(r: Riffle, table: str) -> int:
    """Checks that each partition's committed ranges chain without gap or overlap and that
    docs equal offsets; returns the number of committed segments."""
    names = r.get_json(f"/segments/{table}")[0]["REALTIME"]
    metas = [r.get_json(f"/segments/{table}/{n}/metadata") for n in names]
    done = 0
    for p in {m["partitionId"] for m in metas}:
        segs = sorted((m for m in metas if m["partitionId"] == p), key=lambda m: m["sequenceNumber"])
        expect = int(segs[0]["startOffset"])
        for m in segs:
            assert int(m["startOffset"]) == expect, f"partition {p}: gap or overlap at {m}"
            if m["status"] == "DONE":
                done += 1
                # File-stream offsets are bytes: every line of this test has a known length.
                expect = int(m["endOffset"])
    return done


def test_random_kills_lose_and_duplicate_nothing(riffle_factory):
    kills = int(os.environ.get("RIFFLE_KILLS", "20"))
    n = max(20_000, kills * 1_000)
    r = riffle_factory(name="kill")
    r.start()
    files = [r.stream_file(TOPIC, p) for p in range(PARTITIONS)]
    for f in files:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.touch()
    create_table(r, "killed", rows_per_segment=400)

    produced = 0
    done = threading.Event()

    def produce() -> None:
        nonlocal produced
        i = 0
        batch = 100
        while i < n:
            for p in range(PARTITIONS):
                rows = [line(j) for j in range(i, min(i + batch, n)) if j % PARTITIONS == p]
                append_lines(files[p], rows)
            i = min(i + batch, n)
            produced = i
            # Spread the writes over the kills (about 0.6 s each).
            time.sleep(0.06)
        done.set()

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    rng = random.Random(int(os.environ.get("RIFFLE_KILL_SEED", "7")))
    ports = (r.controller_port, r.broker_port)
    for _ in range(kills):
        time.sleep(rng.uniform(0.05, 0.8))
        r.kill(signal.SIGKILL)
        r.start(ports)
        ports = (r.controller_port, r.broker_port)
    producer.join(timeout=600)
    assert done.is_set(), f"producer stopped at {produced}"
    wait_totals(r, "killed", n, timeout=180)
    segments = committed_chains(r, "killed")
    assert segments >= n // 400 // 2, f"only {segments} segments committed"
    # One more restart from the final state: still exact.
    r.kill(signal.SIGKILL)
    r.start(ports)
    wait_totals(r, "killed", n, timeout=120)
    print(f"kills={kills} rows={n} committed_segments={segments}")


CRASH_POINTS = [
    "seal.after_write",
    "seal.after_upload",
    "catalog.inside_commit",
    "seal.after_commit",
    "registry.during_swap",
]


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_crash_at_each_commit_step_keeps_every_row_once(riffle_factory, point):
    r = riffle_factory(name=point.replace(".", "-"))
    files = [r.stream_file(TOPIC, p) for p in range(PARTITIONS)]
    n = 3_000
    for p, f in enumerate(files):
        f.parent.mkdir(parents=True, exist_ok=True)
        append_lines(f, [line(i) for i in range(n) if i % PARTITIONS == p])
    # The second time the point is reached: one segment committed before the crash.
    r.extra_env = {"RIFFLE_FAILPOINTS": f"{point}@2"}
    r.start()
    ports = (r.controller_port, r.broker_port)
    create_table(r, "crashed", rows_per_segment=300)
    rc = r.wait_exit(timeout=60)
    assert rc == -signal.SIGABRT, f"the server did not stop at {point} (exit {rc})"
    log = r.logs[-1].read_text(errors="replace")
    assert f"failpoint {point} reached" in log

    r.extra_env = {}
    r.start(ports)
    wait_totals(r, "crashed", n)
    committed = committed_chains(r, "crashed")
    assert committed == PARTITIONS * (n // PARTITIONS // 300), committed
    # Nothing that never committed is left behind: local files and deep-store objects are
    # exactly the committed segments.
    names = r.get_json("/segments/crashed")[0]["REALTIME"]
    metas = [r.get_json(f"/segments/crashed/{s}/metadata") for s in names]
    done_names = {m["segmentName"] for m in metas if m["status"] == "DONE"}
    local = {p.stem for p in (r.data_dir / "segments" / "crashed_REALTIME").glob("*")}
    deep = {p.name for p in (r.data_dir / "deepstore" / "crashed_REALTIME").glob("*")}
    assert local == done_names, (local, done_names)
    assert deep == done_names, (deep, done_names)


DL_TOPIC = "dl-topic"


def create_dead_letter_table(r: Riffle, name: str, rows_per_segment: int) -> None:
    schema = {
        "schemaName": name,
        "dimensionFieldSpecs": [{"name": "id", "dataType": "LONG"}, {"name": "bucket", "dataType": "INT"}],
        "metricFieldSpecs": [{"name": "amount", "dataType": "LONG"}],
        "dateTimeFieldSpecs": [{"name": "ts", "dataType": "LONG",
                                "format": "1:MILLISECONDS:EPOCH", "granularity": "1:MILLISECONDS"}],
    }
    table = {
        "tableName": name,
        "tableType": "REALTIME",
        "segmentsConfig": {"timeColumnName": "ts", "replication": "1"},
        "tenants": {},
        "tableIndexConfig": {
            "streamConfigs": {
                "streamType": "file",
                "stream.file.topic.name": DL_TOPIC,
                "stream.file.decoder.class.name":
                    "org.apache.pinot.plugin.inputformat.json.JSONMessageDecoder",
                "stream.file.consumer.prop.auto.offset.reset": "smallest",
                "realtime.segment.flush.threshold.segment.rows": str(rows_per_segment),
                "riffle.deadLetter.enabled": "true",
            },
        },
        "ingestionConfig": {
            "transformConfigs": [{"columnName": "bucket", "transformFunction": "jsonPathString(meta, '$.b')"}]
        },
    }
    status, body = r.post("/tableConfigs", {"tableName": name, "schema": schema, "realtime": table})
    assert status == 200, body


def dl_line(i: int) -> tuple[str, bool]:
    """Line `i` and whether it is bad: every 37th is not JSON, every 53rd fails its
    transform (a bucket that is not a number)."""
    if i % 37 == 5:
        return f'{{"id": {i}, "amount": oops-{i}', True
    b = f"x{i}" if i % 53 == 7 else str(i % 10)
    return json.dumps({"id": i, "amount": i * 7 % 1000, "ts": 1_700_000_000_000 + i, "meta": {"b": b}}), i % 53 == 7


def dl_expected(n: int) -> tuple[tuple[int, int, int], set[tuple[int, str]]]:
    good = [i for i in range(n) if not dl_line(i)[1]]
    bad = {(i % PARTITIONS, dl_line(i)[0].encode().hex()) for i in range(n) if dl_line(i)[1]}
    return (len(good), len(good), sum(i * 7 % 1000 for i in good)), bad


def dead_letters(r: Riffle, table: str) -> list[tuple[int, str, str]]:
    return [
        (int(p), v, e)
        for p, v, e in r.query(
            f"SELECT streamPartition, messageValue, errorMessage FROM {table}_deadLetter LIMIT 100000"
        )
    ]


def wait_dead_letters(r: Riffle, table: str, n: int, timeout: float = 120.0) -> None:
    good, bad = dl_expected(n)
    wait_until(f"totals of {table} == {good}", lambda: totals(r, table), lambda t: t == good, timeout)
    wait_until(
        f"{len(bad)} dead letters of {table}",
        lambda: len(dead_letters(r, table)),
        lambda c: c == len(bad),
        timeout,
    )
    time.sleep(0.5)
    assert totals(r, table) == good
    got = dead_letters(r, table)
    # Each bad message exactly once, with its bytes and why it failed.
    assert len(got) == len(bad), (len(got), len(bad))
    assert {(p, v.lower()) for p, v, _ in got} == bad
    assert all(e for _, _, e in got)
    assert any("bucket" in e for _, _, e in got) and any("amount" in e or "expected" in e for _, _, e in got)


def test_dead_letters_survive_kills_exactly_once(riffle_factory):
    kills = max(4, int(os.environ.get("RIFFLE_KILLS", "20")) // 3)
    n = 9_000
    r = riffle_factory(name="dead-letter-kill")
    r.start()
    files = [r.stream_file(DL_TOPIC, p) for p in range(PARTITIONS)]
    for f in files:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.touch()
    create_dead_letter_table(r, "lettered", rows_per_segment=300)
    done = threading.Event()

    def produce() -> None:
        i = 0
        while i < n:
            for p in range(PARTITIONS):
                append_lines(files[p], [dl_line(j)[0] for j in range(i, min(i + 300, n)) if j % PARTITIONS == p])
            i = min(i + 300, n)
            time.sleep(0.1)
        done.set()

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    rng = random.Random(11)
    ports = (r.controller_port, r.broker_port)
    for _ in range(kills):
        time.sleep(rng.uniform(0.1, 0.8))
        r.kill(signal.SIGKILL)
        r.start(ports)
        ports = (r.controller_port, r.broker_port)
    producer.join(timeout=300)
    assert done.is_set()
    wait_dead_letters(r, "lettered", n)
    assert committed_chains(r, "lettered") >= 3
    r.kill(signal.SIGKILL)
    r.start(ports)
    wait_dead_letters(r, "lettered", n)


@pytest.mark.parametrize("point", ["catalog.inside_commit", "seal.after_commit"])
def test_dead_letters_commit_with_their_segment(riffle_factory, point):
    r = riffle_factory(name="dl-" + point.replace(".", "-"))
    files = [r.stream_file(DL_TOPIC, p) for p in range(PARTITIONS)]
    n = 2_400
    for p, f in enumerate(files):
        f.parent.mkdir(parents=True, exist_ok=True)
        append_lines(f, [dl_line(i)[0] for i in range(n) if i % PARTITIONS == p])
    r.extra_env = {"RIFFLE_FAILPOINTS": f"{point}@2"}
    r.start()
    ports = (r.controller_port, r.broker_port)
    create_dead_letter_table(r, "dlcrash", rows_per_segment=200)
    rc = r.wait_exit(timeout=60)
    assert rc == -signal.SIGABRT, f"the server did not stop at {point} (exit {rc})"
    r.extra_env = {}
    r.start(ports)
    wait_dead_letters(r, "dlcrash", n)
