"""A hybrid table (one name, a REALTIME and an OFFLINE table) is queried with Pinot's time
boundary: the OFFLINE segments' largest time minus one day; OFFLINE rows at or before it,
REALTIME rows after it, so rows both halves hold are counted once. The boundary moves when
a newer OFFLINE segment lands, and holds across a restart.

The two halves hold the same ids for the days they share, with different `v` (1 OFFLINE,
100 REALTIME), so that a sum tells which half answered for which day.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request

from riffle_harness import Riffle, append_lines

DAY = 86_400_000
T0 = 1_700_006_400_000 - (1_700_006_400_000 % DAY)  # a midnight (UTC)
PER_DAY = 10

SCHEMA = {
    "schemaName": "hy",
    "dimensionFieldSpecs": [{"name": "id", "dataType": "INT"}],
    "metricFieldSpecs": [{"name": "v", "dataType": "LONG"}],
    "dateTimeFieldSpecs": [
        {"name": "ts", "dataType": "LONG", "format": "1:MILLISECONDS:EPOCH", "granularity": "1:MILLISECONDS"}
    ],
}


def rows(days: range, v: int) -> list[dict]:
    return [
        {"id": d * PER_DAY + i, "v": v, "ts": T0 + d * DAY + 1000 + i}
        for d in days
        for i in range(PER_DAY)
    ]


def ingest(r: Riffle, data: list[dict]) -> dict:
    cfg = urllib.parse.quote(json.dumps({"inputFormat": "json"}))
    body = "".join(json.dumps(x) + "\n" for x in data).encode()
    req = urllib.request.Request(
        f"{r.controller_url}/ingestFromFile?tableNameWithType=hy_OFFLINE&batchConfigMapStr={cfg}",
        data=body,
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def sums(r: Riffle) -> tuple[int, int, int]:
    (count,) = r.query("SELECT COUNT(*) FROM hy")[0]
    (distinct,) = r.query("SELECT COUNT(DISTINCT id) FROM hy")[0]
    (v,) = r.query("SELECT SUM(v) FROM hy")[0]
    return int(count), int(distinct), int(v)


def test_hybrid_table_counts_each_row_once_and_the_boundary_moves(tmp_path):
    r = Riffle(tmp_path / "data", tmp_path, name="hybrid").start()
    try:
        assert r.post("/schemas", SCHEMA)[0] == 200
        realtime = {
            "tableName": "hy",
            "tableType": "REALTIME",
            "segmentsConfig": {"timeColumnName": "ts", "replication": "1"},
            "tenants": {},
            "tableIndexConfig": {},
            "metadata": {},
            "ingestionConfig": {
                "streamIngestionConfig": {
                    "streamConfigMaps": [
                        {
                            "streamType": "file",
                            "stream.file.topic.name": "hy",
                            "stream.file.decoder.class.name": "org.apache.pinot.plugin.stream.kafka.KafkaJSONMessageDecoder",
                            "stream.file.consumer.prop.auto.offset.reset": "smallest",
                            "realtime.segment.flush.threshold.rows": "25",
                        }
                    ]
                }
            },
        }
        # Days 0..4 in the stream, v = 100: 50 rows; two sealed segments and a consuming one.
        append_lines(r.stream_file("hy", 0), [json.dumps(x) for x in rows(range(5), 100)])
        status, body = r.post("/tables", realtime)
        assert status == 200, body
        r.wait_count("hy", 5 * PER_DAY)
        assert sums(r) == (50, 50, 5000)

        offline = {
            "tableName": "hy",
            "tableType": "OFFLINE",
            "segmentsConfig": {"timeColumnName": "ts", "replication": "1"},
            "tenants": {},
            "tableIndexConfig": {},
            "metadata": {},
            "ingestionConfig": {"batchIngestionConfig": {"segmentIngestionFrequency": "DAILY"}},
        }
        status, body = r.post("/tables", offline)
        assert status == 200, body
        # No OFFLINE data yet: the REALTIME half answers alone.
        assert sums(r) == (50, 50, 5000)

        # OFFLINE days 0..3 (v = 1): the boundary is day 3's last time minus a day, so
        # OFFLINE answers for days 0..2 and REALTIME for days 3 and 4.
        assert "Successfully ingested" in ingest(r, rows(range(4), 1))["status"]
        assert sums(r) == (50, 50, 3 * PER_DAY * 1 + 2 * PER_DAY * 100)
        assert r.query("SELECT COUNT(*) FROM hy WHERE id < 25")[0][0] == 25
        by_day = r.query("SELECT v, COUNT(*) FROM hy GROUP BY v ORDER BY v")
        assert by_day == [[1, 30], [100, 20]], by_day

        # A newer OFFLINE segment (day 4) moves the boundary a day on.
        ingest(r, rows(range(4, 5), 1))
        assert sums(r) == (50, 50, 4 * PER_DAY * 1 + 1 * PER_DAY * 100)

        # After a restart the boundary is computed again from the catalog.
        r.kill()
        r.start()
        r.wait_count("hy", 50)
        assert sums(r) == (50, 50, 4 * PER_DAY * 1 + 1 * PER_DAY * 100)

        # The OFFLINE half deleted: the REALTIME half answers alone again.
        req = urllib.request.Request(f"{r.controller_url}/tables/hy?type=offline", method="DELETE")
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 200
        assert sums(r) == (50, 50, 5000)
    finally:
        r.kill()
