#!/usr/bin/env python3
"""Writes a data directory with a given `riffle` binary, for the compatibility test that
starts the current code on it (`crates/riffle-node/tests/compat.rs`).

    scripts/make-compat-fixture.py RIFFLE_BINARY OUT_DIR

The directory holds:
- `compat` (REALTIME, file stream, 2 partitions of 1,000 rows, 300-row segments, an
  inverted and a range index): 3 committed segments per partition and 100 consuming rows
  each, which only the stream files hold;
- `compat_paused` (REALTIME, 1 partition of 500 rows, 200-row segments), paused: every row
  committed, no consuming segment;
- `compat_offline` (OFFLINE, empty);
then the server is killed with SIGKILL, as a crash leaves a data directory. `OUT_DIR/
expected.json` records what the server reported before the kill: row counts, sums, and the
metadata of every segment. The data directory itself is `OUT_DIR/data`. Standard library
only."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROWS = {"compat": (2, 1000, 300), "compat_paused": (1, 500, 200)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(method: str, url: str, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
            try:
                return r.status, json.loads(raw or b"null")
            except ValueError:
                return r.status, raw.decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait(what, probe, timeout=60.0):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            last = probe()
            if last:
                return last
        except Exception as e:  # noqa: BLE001
            last = e
        time.sleep(0.2)
    sys.exit(f"timed out waiting for {what}: {last!r}")


def schema(name: str) -> dict:
    return {
        "schemaName": name,
        "dimensionFieldSpecs": [{"name": "id", "dataType": "LONG"},
                                {"name": "kind", "dataType": "STRING"}],
        "metricFieldSpecs": [{"name": "amount", "dataType": "DOUBLE"}],
        "dateTimeFieldSpecs": [{"name": "ts", "dataType": "LONG", "format": "1:MILLISECONDS:EPOCH",
                                "granularity": "1:MILLISECONDS"}],
    }


def realtime(name: str, rows_per_segment: int) -> dict:
    return {
        "tableName": name,
        "tableType": "REALTIME",
        "segmentsConfig": {"timeColumnName": "ts", "replication": "1",
                           "retentionTimeUnit": "DAYS", "retentionTimeValue": "36500"},
        "tenants": {},
        "tableIndexConfig": {
            "invertedIndexColumns": ["kind"],
            "rangeIndexColumns": ["amount"],
            "streamConfigs": {
                "streamType": "file",
                "stream.file.topic.name": f"{name}-topic",
                "stream.file.decoder.class.name":
                    "org.apache.pinot.plugin.stream.kafka.KafkaJSONMessageDecoder",
                "stream.file.consumer.prop.auto.offset.reset": "smallest",
                "realtime.segment.flush.threshold.segment.rows": str(rows_per_segment),
            },
        },
        "metadata": {"customConfigs": {"origin": "compat fixture"}},
    }


def line(i: int) -> str:
    return json.dumps({"id": i, "kind": ["a", "b", "c"][i % 3], "amount": i * 0.5,
                       "ts": 1_700_000_000_000 + i * 1000})


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    binary, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    work = Path(tempfile.mkdtemp(prefix="riffle-compat-"))
    data = work / "data"
    first = 0
    for name, (parts, per_part, _) in ROWS.items():
        for p in range(parts):
            f = data / "streams" / f"{name}-topic" / f"{p}.jsonl"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text("".join(line(first + p * per_part + i) + "\n" for i in range(per_part)))
        first += parts * per_part
    cport, bport = free_port(), free_port()
    log = open(work / "server.log", "w")
    proc = subprocess.Popen([str(binary), "serve", "--data-dir", str(data), "--host", "127.0.0.1",
                             "--controller-port", str(cport), "--broker-port", str(bport)],
                            stdout=log, stderr=log, env={**os.environ, "RIFFLE_LOG": "info"})
    c, b = f"http://127.0.0.1:{cport}", f"http://127.0.0.1:{bport}"
    try:
        wait("the server", lambda: call("GET", f"{c}/health")[0] == 200)
        for name, (_, _, seg_rows) in ROWS.items():
            st, body = call("POST", f"{c}/tableConfigs",
                            {"tableName": name, "schema": schema(name),
                             "realtime": realtime(name, seg_rows)})
            assert st == 200, body
        st, body = call("POST", f"{c}/schemas", schema("compat_offline"))
        assert st == 200, body
        st, body = call("POST", f"{c}/tables", {
            "tableName": "compat_offline", "tableType": "OFFLINE",
            "segmentsConfig": {"timeColumnName": "ts", "replication": "1"}, "tenants": {},
            "tableIndexConfig": {"loadMode": "HEAP"}})
        assert st == 200, body

        def query(sql):
            st, r = call("POST", f"{b}/query/sql", {"sql": sql})
            assert st == 200 and not r["exceptions"], r
            return r["resultTable"]["rows"][0]

        def done(name):
            st, segs = call("GET", f"{c}/segments/{name}")
            assert st == 200, segs
            metas = [call("GET", f"{c}/segments/{name}/{s}/metadata")[1] for s in segs[0]["REALTIME"]]
            return [m for m in metas if m["status"] == "DONE"]

        for name, (parts, per_part, seg_rows) in ROWS.items():
            n = parts * per_part
            wait(f"{name} rows", lambda: query(f"SELECT COUNT(*) FROM {name}")[0] == n)
            want = parts * (per_part // seg_rows)
            wait(f"{name} commits", lambda: len(done(name)) >= want)
        st, body = call("POST", f"{c}/tables/compat_paused/pauseConsumption?comment=fixture")
        assert st == 200, body
        wait("the pause", lambda: call("GET", f"{c}/tables/compat_paused/pauseStatus")[1]
             ["consumingSegments"] == [])
        expected = {"binary": str(binary.name), "tables": {}}
        for name in ROWS:
            cnt, total, distinct = query(
                f"SELECT COUNT(*), SUM(id), COUNT(DISTINCT id) FROM {name}")
            st, segs = call("GET", f"{c}/segments/{name}")
            metas = {s: call("GET", f"{c}/segments/{name}/{s}/metadata")[1]
                     for s in segs[0]["REALTIME"]}
            for m in metas.values():
                m.pop("riffleLoadError", None)
            expected["tables"][name] = {"count": cnt, "sumId": total, "distinctId": distinct,
                                        "segments": metas}
        expected["tables"]["compat_paused"]["pauseStatus"] = call(
            "GET", f"{c}/tables/compat_paused/pauseStatus")[1]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        log.close()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copytree(data, out / "data")
    (out / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    shutil.rmtree(work)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
