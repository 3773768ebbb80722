"""Columns added to a running table: the schema gains columns and the table config a
transform for one of them, while the table consumes; no restart, no pause, no reload.

The new columns are queryable as soon as the schema update returns (rows so far read the
defaults, in sealed and consuming segments alike), and messages that arrive after fill
them (straight from the message, or through the new transform). Nothing is read twice: the
count stays exact and the partition never stops.
"""

from __future__ import annotations

import json
import time

from riffle_harness import Riffle, append_lines, wait_until

TOPIC = "evolve-topic"
LONG_MIN = -(2**63)


def line(i: int) -> str:
    return json.dumps({"id": i, "name": f"n{i}", "extra": f"x{i}", "n": i, "ts": 1_700_000_000_000 + i})


def schema(extra_columns: bool) -> dict:
    dims = [{"name": "id", "dataType": "LONG"}, {"name": "name", "dataType": "STRING"}]
    if extra_columns:
        dims += [{"name": "extra", "dataType": "STRING"}, {"name": "doubled", "dataType": "LONG"}]
    return {
        "schemaName": "evolving",
        "dimensionFieldSpecs": dims,
        "dateTimeFieldSpecs": [{"name": "ts", "dataType": "LONG", "format": "1:MILLISECONDS:EPOCH", "granularity": "1:MILLISECONDS"}],
    }


def table(transforms: list[dict]) -> dict:
    t = {
        "tableName": "evolving",
        "tableType": "REALTIME",
        "segmentsConfig": {"timeColumnName": "ts", "replication": "1"},
        "tenants": {},
        "tableIndexConfig": {
            "streamConfigs": {
                "streamType": "file",
                "stream.file.topic.name": TOPIC,
                "stream.file.decoder.class.name": "org.apache.pinot.plugin.inputformat.json.JSONMessageDecoder",
                "stream.file.consumer.prop.auto.offset.reset": "smallest",
                "realtime.segment.flush.threshold.segment.rows": "100",
            }
        },
        "metadata": {},
    }
    if transforms:
        t["ingestionConfig"] = {"transformConfigs": transforms}
    return t


def test_columns_added_while_consuming(riffle_factory):
    r: Riffle = riffle_factory()
    r.start()
    f = r.stream_file(TOPIC)
    f.parent.mkdir(parents=True, exist_ok=True)
    append_lines(f, [line(i) for i in range(250)])
    assert r.post("/schemas", schema(False))[0] == 200
    status, body = r.post("/tables", table([]))
    assert status == 200, body
    r.wait_count("evolving", 250)
    # Two sealed segments of 100 rows and a consuming one of 50.
    wait_until(
        "two committed segments",
        lambda: r.get_json("/segments/evolving")[0]["REALTIME"],
        lambda names: len(names) == 3,
    )

    # An incompatible change is refused, naming the column.
    bad = schema(False)
    bad["dimensionFieldSpecs"][1]["dataType"] = "INT"
    status, body = r.post("/schemas/evolving", bad, method="PUT")
    assert status == 400 and "name" in json.dumps(body) and "incompatible" in json.dumps(body), body

    status, body = r.post("/schemas/evolving", schema(True), method="PUT")
    assert status == 200, body
    # Queryable at once: every row so far reads the defaults.
    got = r.query("SELECT COUNT(*), MIN(extra), MAX(extra), MIN(doubled) FROM evolving")
    assert got == [[250, "null", "null", LONG_MIN]], got

    # The transform for `doubled`, through a table-config update.
    status, body = r.post(
        "/tables/evolving", table([{"columnName": "doubled", "transformFunction": "times(n, 2)"}]), method="PUT"
    )
    assert status == 200, body
    append_lines(f, [line(i) for i in range(250, 330)])
    r.wait_count("evolving", 330)
    rows = {row[0]: row[1:] for row in r.query("SELECT id, extra, doubled FROM evolving LIMIT 1000")}
    assert len(rows) == 330
    for i in range(250):
        assert rows[i] == ["null", LONG_MIN], (i, rows[i])
    for i in range(250, 330):
        assert rows[i] == [f"x{i}", 2 * i], (i, rows[i])
    # Sealed later, the new rows keep their values; the partition never restarted.
    time.sleep(0.5)
    assert r.count("evolving") == 330
    log = r.logs[-1].read_text(errors="replace")
    assert "table stopped" not in log, log[-2000:]
    assert "following the table's new columns" in log
