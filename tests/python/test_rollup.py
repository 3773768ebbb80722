"""Ingestion-time rollup (`aggregationConfigs`): a rolled-up table and a plain one read the
same stream; the rolled-up one holds fewer rows and the same answers: sums, counts,
extremes, and distinct counts read from its stored HyperLogLog sketches equal to the plain
table's sketch of the same precision."""

from __future__ import annotations

import json
import random

from riffle_harness import Riffle, append_lines, wait_until

TOPIC = "rollup-topic"
COUNTRIES = ["FR", "DE", "US", "JP"]


def events(n: int) -> list[dict]:
    rng = random.Random(5)
    return [
        {
            "country": rng.choice(COUNTRIES),
            "minute": 1_700_000_000_000 + 60_000 * (i // 50),
            "bytes": rng.randint(1, 5000),
            "price": round(rng.uniform(0, 100), 2),
            "user": f"u{rng.randint(1, 300)}",
        }
        for i in range(n)
    ]


def table(name: str, schema_metrics: list[dict], aggregations: list[dict] | None) -> tuple[dict, dict]:
    schema = {
        "schemaName": name,
        "dimensionFieldSpecs": [{"name": "country", "dataType": "STRING"}]
        + ([] if aggregations else [{"name": "user", "dataType": "STRING"}]),
        "metricFieldSpecs": schema_metrics,
        "dateTimeFieldSpecs": [{"name": "minute", "dataType": "LONG", "format": "1:MILLISECONDS:EPOCH", "granularity": "1:MINUTES"}],
    }
    config = {
        "tableName": name,
        "tableType": "REALTIME",
        "segmentsConfig": {"timeColumnName": "minute", "replication": "1"},
        "tenants": {},
        "tableIndexConfig": {
            "noDictionaryColumns": [m["name"] for m in schema_metrics],
            "streamConfigs": {
                "streamType": "file",
                "stream.file.topic.name": TOPIC,
                "stream.file.decoder.class.name": "org.apache.pinot.plugin.inputformat.json.JSONMessageDecoder",
                "stream.file.consumer.prop.auto.offset.reset": "smallest",
                "realtime.segment.flush.threshold.segment.rows": "400",
            },
        },
        "metadata": {},
    }
    if aggregations:
        config["ingestionConfig"] = {"aggregationConfigs": aggregations}
    return schema, config


def test_rollup_sums_equal_the_plain_table(riffle_factory):
    rows = events(2000)
    r: Riffle = riffle_factory()
    r.start()
    f = r.stream_file(TOPIC)
    f.parent.mkdir(parents=True, exist_ok=True)
    append_lines(f, [json.dumps(e) for e in rows])
    plain = table(
        "plain",
        [{"name": "bytes", "dataType": "LONG"}, {"name": "price", "dataType": "DOUBLE"}],
        None,
    )
    rolled = table(
        "rolled",
        [
            {"name": "total_bytes", "dataType": "LONG"},
            {"name": "events", "dataType": "LONG"},
            {"name": "max_price", "dataType": "DOUBLE"},
            {"name": "min_price", "dataType": "DOUBLE"},
            {"name": "users", "dataType": "BYTES"},
        ],
        [
            {"columnName": "total_bytes", "aggregationFunction": "SUM(bytes)"},
            {"columnName": "events", "aggregationFunction": "COUNT(*)"},
            {"columnName": "max_price", "aggregationFunction": "MAX(price)"},
            {"columnName": "min_price", "aggregationFunction": "MIN(price)"},
            {"columnName": "users", "aggregationFunction": "DISTINCTCOUNTHLL(user, 12)"},
        ],
    )
    for schema, config in (plain, rolled):
        assert r.post("/schemas", schema)[0] == 200
        status, body = r.post("/tables", config)
        assert status == 200, body
    r.wait_count("plain", len(rows))
    wait_until(
        "every event counted in the rollup",
        lambda: r.query("SELECT SUM(events) FROM rolled"),
        lambda g: g == [[len(rows)]],
    )
    # Fewer rows: one per country and minute within a segment.
    assert r.count("rolled") < len(rows) // 4
    want = r.query(
        "SELECT country, SUM(bytes), COUNT(*), MAX(price), MIN(price), DISTINCTCOUNTHLL(user, 12) "
        "FROM plain GROUP BY country ORDER BY country"
    )
    got = r.query(
        "SELECT country, SUM(total_bytes), SUM(events), MAX(max_price), MIN(min_price), DISTINCTCOUNTHLL(users) "
        "FROM rolled GROUP BY country ORDER BY country"
    )
    assert got == want, (got, want)
    exact = {c: len({e["user"] for e in rows if e["country"] == c}) for c in COUNTRIES}
    for country, *_, distinct in got:
        assert abs(distinct - exact[country]) <= max(3, exact[country] * 0.05), (country, distinct, exact)
