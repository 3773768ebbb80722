"""Pinot's ingestion transforms and filter end to end, from a real Kafka-protocol broker.

Pinot's own airline table config (`tests/data/airline/`) sets `ts` and `tsRaw` to
`fromEpochDays(DaysSinceEpoch)`. The 9,746 flights of the Avro file go to a Tansu topic as
JSON (Tansu's own producer), the table is created from the config as written (only the
broker list changed), and every row's `ts` and `tsRaw` must be its `DaysSinceEpoch` in
milliseconds, read back through pinotdb.

A second table reads the same topic with a filter and a chain of transforms through an
intermediate column; its rows are checked against the same flights computed here.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import fastavro

from riffle_harness import REPO, Riffle, Tansu

AIRLINE = REPO / "tests" / "data" / "airline"
TOPIC = "flights-realtime"
DAY_MS = 86_400_000


def produce_flights(tansu: Tansu) -> list[dict]:
    with open(AIRLINE / "airlineStats_data.avro", "rb") as f:
        rows = list(fastavro.reader(f))
    tansu.run("topic", "create", "--broker", tansu.url, "--partitions", "1", TOPIC)
    produced = "".join(json.dumps({"value": r}) + "\n" for r in rows)
    tansu.run("cat", "produce", "--broker", tansu.url, "--partition", "0", TOPIC, stdin=produced)
    return rows


def airline_config(tansu: Tansu) -> dict:
    config = json.loads((AIRLINE / "airlineStats_realtime_table_config.json").read_text())
    stream = config["ingestionConfig"]["streamIngestionConfig"]["streamConfigMaps"][0]
    assert stream["stream.kafka.topic.name"] == TOPIC
    stream["stream.kafka.broker.list"] = tansu.bootstrap
    return config


def ts_millis(v) -> int:
    """A TIMESTAMP as pinotdb gives it (a naive UTC datetime, or the broker's text
    "2014-01-01 00:00:00.0") in epoch ms."""
    if isinstance(v, str):
        v = dt.datetime.strptime(v, "%Y-%m-%d %H:%M:%S.%f")
    return round(v.replace(tzinfo=dt.timezone.utc).timestamp() * 1000)


def test_airline_transforms_from_kafka(tansu: Tansu, riffle_factory):
    rows = produce_flights(tansu)
    assert len(rows) == 9746
    r: Riffle = riffle_factory()
    r.start()
    schema = json.loads((AIRLINE / "airlineStats_schema.json").read_text())
    status, body = r.post("/schemas", schema)
    assert status == 200, body
    config = airline_config(tansu)
    assert config["ingestionConfig"]["transformConfigs"][0] == {
        "columnName": "ts",
        "transformFunction": "fromEpochDays(DaysSinceEpoch)",
    }
    status, body = r.post("/tables", config)
    assert status == 200, body
    r.wait_count("airlineStats", len(rows), timeout=60)

    got = r.query("SELECT DaysSinceEpoch, ts, tsRaw FROM airlineStats LIMIT 20000")
    assert len(got) == len(rows)
    days = sorted(row["DaysSinceEpoch"] for row in rows)
    assert sorted(g[0] for g in got) == days
    for d, ts, ts_raw in got:
        assert ts_millis(ts) == d * DAY_MS, (d, ts)
        assert ts_millis(ts_raw) == d * DAY_MS, (d, ts_raw)
    # The first day of the file is 2014-01-01.
    [[first_day, first_ts]] = r.query("SELECT MIN(DaysSinceEpoch), MIN(ts) FROM airlineStats")
    assert first_day == 16071
    assert ts_millis(first_ts) == 1_388_534_400_000


def test_filter_and_chained_transforms_from_kafka(tansu: Tansu, riffle_factory):
    rows = produce_flights(tansu)
    r: Riffle = riffle_factory()
    r.start()
    schema = {
        "schemaName": "routes",
        "dimensionFieldSpecs": [
            {"name": "route", "dataType": "STRING"},
            {"name": "carrierLower", "dataType": "STRING"},
            {"name": "stops", "dataType": "STRING", "singleValueField": False},
        ],
        "metricFieldSpecs": [{"name": "delayHours", "dataType": "DOUBLE"}],
        "dateTimeFieldSpecs": [
            {"name": "day", "dataType": "STRING", "format": "1:DAYS:SIMPLE_DATE_FORMAT:yyyy-MM-dd", "granularity": "1:DAYS"}
        ],
    }
    config = {
        "tableName": "routes",
        "tableType": "REALTIME",
        "segmentsConfig": {"timeColumnName": "day", "replication": "1"},
        "tenants": {},
        "tableIndexConfig": {},
        "metadata": {},
        "ingestionConfig": {
            "streamIngestionConfig": {
                "streamConfigMaps": [
                    {
                        "streamType": "kafka",
                        "stream.kafka.topic.name": TOPIC,
                        "stream.kafka.broker.list": tansu.bootstrap,
                        "stream.kafka.decoder.class.name": "org.apache.pinot.plugin.inputformat.json.JSONMessageDecoder",
                        "stream.kafka.consumer.prop.auto.offset.reset": "smallest",
                    }
                ]
            },
            "transformConfigs": [
                {"columnName": "route", "transformFunction": "concat(Origin, Dest, '-')"},
                {"columnName": "carrierLower", "transformFunction": "lower(Carrier)"},
                {"columnName": "stops", "transformFunction": "split(route, '-')"},
                # Through an intermediate column that is not in the schema.
                {"columnName": "delayMinutes", "transformFunction": "plus(ArrDelayMinutes, 0)"},
                {"columnName": "delayHours", "transformFunction": "divide(delayMinutes, 60)"},
                {"columnName": "day", "transformFunction": "toDateTime(fromEpochDays(DaysSinceEpoch), 'yyyy-MM-dd')"},
            ],
            # Drops every flight of carrier AA and every flight without a delay value.
            "filterConfig": {"filterFunction": "Carrier = 'AA' OR ArrDelayMinutes IS NULL"},
        },
    }
    for s, body in (("/schemas", schema), ("/tables", config)):
        status, resp = r.post(s, body)
        assert status == 200, resp
    kept = [x for x in rows if x["Carrier"] != "AA" and x["ArrDelayMinutes"] is not None]
    assert 0 < len(kept) < len(rows)
    r.wait_count("routes", len(kept), timeout=60)

    def day(d: int) -> str:
        return (dt.date(1970, 1, 1) + dt.timedelta(days=d)).isoformat()

    want = sorted(
        (f"{x['Origin']}-{x['Dest']}", x["Carrier"].lower(), [x["Origin"], x["Dest"]], x["ArrDelayMinutes"] / 60, day(x["DaysSinceEpoch"]))
        for x in kept
    )
    got = sorted(
        (a, b, c, d, e)
        for a, b, c, d, e in r.query(
            "SELECT route, carrierLower, stops, delayHours, \"day\" FROM routes LIMIT 20000"
        )
    )
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g[:3] == w[:3] and g[4] == w[4], (g, w)
        assert abs(g[3] - w[3]) < 1e-9, (g, w)
    # The filter's drops are counted, not errors.
    info = r.get_json("/tables/routes/consumingSegmentsInfo")
    consumers = [c for segs in info["_segmentToConsumingInfoMap"].values() for c in segs]
    assert sum(c["riffleRowsFiltered"] for c in consumers) == len(rows) - len(kept)
    assert sum(c["riffleDecodeErrors"] for c in consumers) == 0


def test_complex_types_unnest_and_flatten_from_kafka(tansu: Tansu, riffle_factory):
    orders = [
        {"order": 1, "user": {"name": "ann", "geo": {"cc": "FR"}}, "items": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 1}]},
        {"order": 2, "user": {"name": "bo"}, "items": [{"sku": "c", "qty": 5}], "tags": ["x", "y"]},
        {"order": 3, "user": {"name": "cy"}, "items": []},
    ]
    tansu.run("topic", "create", "--broker", tansu.url, "--partitions", "1", "orders")
    produced = "".join(json.dumps({"value": o}) + "\n" for o in orders)
    tansu.run("cat", "produce", "--broker", tansu.url, "--partition", "0", "orders", stdin=produced)
    r: Riffle = riffle_factory()
    r.start()
    schema = {
        "schemaName": "orders",
        "dimensionFieldSpecs": [
            {"name": "order", "dataType": "INT"},
            {"name": "name", "dataType": "STRING"},
            {"name": "country", "dataType": "STRING"},
            {"name": "items_sku", "dataType": "STRING"},
            {"name": "tags", "dataType": "STRING", "singleValueField": False},
        ],
        "metricFieldSpecs": [{"name": "items_qty", "dataType": "LONG"}],
        "dateTimeFieldSpecs": [
            {"name": "ts", "dataType": "LONG", "format": "1:MILLISECONDS:EPOCH", "granularity": "1:MILLISECONDS"}
        ],
    }
    config = {
        "tableName": "orders",
        "tableType": "REALTIME",
        "segmentsConfig": {"timeColumnName": "ts", "replication": "1"},
        "tenants": {},
        "tableIndexConfig": {
            "streamConfigs": {
                "streamType": "kafka",
                "stream.kafka.topic.name": "orders",
                "stream.kafka.broker.list": tansu.bootstrap,
                "stream.kafka.decoder.class.name": "org.apache.pinot.plugin.inputformat.json.JSONMessageDecoder",
                "stream.kafka.consumer.prop.auto.offset.reset": "smallest",
            }
        },
        "metadata": {},
        "ingestionConfig": {
            "complexTypeConfig": {
                "fieldsToUnnest": ["items"],
                "delimiter": "_",
                "prefixesToRename": {"user_": ""},
            },
            "transformConfigs": [{"columnName": "country", "transformFunction": "upper(geo_cc)"}],
        },
    }
    for path, body in (("/schemas", schema), ("/tables", config)):
        status, resp = r.post(path, body)
        assert status == 200, resp
    r.wait_count("orders", 4)
    got = sorted(r.query("SELECT \"order\", name, country, items_sku, items_qty, tags FROM orders LIMIT 10"))
    assert got == [
        [1, "ann", "FR", "a", 2, ["null"]],
        [1, "ann", "FR", "b", 1, ["null"]],
        [2, "bo", "null", "c", 5, ["x", "y"]],
        [3, "cy", "null", "null", 0, ["null"]],
    ]
    # A bad complexTypeConfig is refused with its JSON path.
    bad = json.loads(json.dumps(config))
    bad["tableName"] = "orders2"
    bad["ingestionConfig"]["complexTypeConfig"]["collectionNotUnnestedToJson"] = "SOME"
    schema["schemaName"] = "orders2"
    assert r.post("/schemas", schema)[0] == 200
    status, resp = r.post("/tables", bad)
    assert status == 400, resp
    assert "$.ingestionConfig.complexTypeConfig.collectionNotUnnestedToJson" in json.dumps(resp), resp
