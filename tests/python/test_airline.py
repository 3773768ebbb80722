"""Pinot's own 200-query file on Pinot's airline example, answered as DuckDB answers it.

The data (`tests/data/airline/`, a copy of Pinot's example: 9,746 flights of January 2014
as Avro, the schema, the table config and the query file) is loaded into a table named
`airlineStats` through the file stream, split over two partitions. The reference is DuckDB
over the same rows with Pinot's default null values applied (a null INT dimension is
-2147483648, a null STRING "null", an empty multi-value list holds the default value once),
computed here independently of Riffle. The Avro file is read with fastavro in the test:
Riffle's own Avro decoder is a later piece of work.

Each query runs against consuming segments, then again after a force commit has sealed
them. Where the file gives an H2 form of a query (`hsqls`: multi-value predicates spelled
out element by element), DuckDB runs that form.

How answers are compared, as Pinot's own query-file tests do: numbers within a relative
1e-9 (plus 1e-6 absolute); the row count equals min(LIMIT, rows of the full answer); every
row of Riffle's answer is a distinct row of the full answer (ties at the LIMIT may pick any
of the tied rows); with ORDER BY, the ordering columns follow the reference's order.
"""

from __future__ import annotations

import json
import math
import re
import time
import urllib.request
from pathlib import Path

import duckdb
import fastavro
import pytest

from riffle_harness import REPO, Riffle, append_lines, wait_until

AIRLINE = REPO / "tests" / "data" / "airline"
QUERIES = AIRLINE / "On_Time_On_Time_Performance_2014_100k_subset.test_queries_200.sql"
TOPIC = "flights-realtime"
PARTITIONS = 2

# Pinot's default null values (FieldSpec): dimensions and date-times, then metrics.
DIMENSION_DEFAULTS = {
    "INT": -(2**31),
    "LONG": -(2**63),
    "FLOAT": float("-inf"),
    "DOUBLE": float("-inf"),
    "STRING": "null",
    "BOOLEAN": 0,
    "TIMESTAMP": 0,
}
METRIC_DEFAULTS = {"INT": 0, "LONG": 0, "FLOAT": 0.0, "DOUBLE": 0.0}
DUCK_TYPES = {"INT": "INTEGER", "LONG": "BIGINT", "FLOAT": "FLOAT", "DOUBLE": "DOUBLE", "STRING": "VARCHAR"}


def schema_fields() -> list[dict]:
    schema = json.loads((AIRLINE / "airlineStats_schema.json").read_text())
    fields = []
    for kind in ("dimensionFieldSpecs", "metricFieldSpecs", "dateTimeFieldSpecs"):
        for f in schema.get(kind, []):
            defaults = METRIC_DEFAULTS if kind == "metricFieldSpecs" else DIMENSION_DEFAULTS
            fields.append(
                {
                    "name": f["name"],
                    "type": f["dataType"],
                    "mv": f.get("singleValueField", True) is False,
                    "default": f.get("defaultNullValue", defaults[f["dataType"]]),
                }
            )
    return fields


def avro_rows() -> list[dict]:
    with open(AIRLINE / "airlineStats_data.avro", "rb") as f:
        return list(fastavro.reader(f))


def with_defaults(row: dict, fields: list[dict]) -> dict:
    """The row as Pinot stores it without null handling."""
    out = {}
    for f in fields:
        if f["name"] not in row:
            continue
        v = row[f["name"]]
        if f["mv"]:
            out[f["name"]] = list(v) if v else [f["default"]]
        else:
            out[f["name"]] = f["default"] if v is None else v
    return out


def duck_reference(rows: list[dict], fields: list[dict], tmp: Path) -> duckdb.DuckDBPyConnection:
    present = [f for f in fields if f["name"] in rows[0]]
    path = tmp / "airline-with-defaults.jsonl"
    with open(path, "w") as out:
        for r in rows:
            out.write(json.dumps(with_defaults(r, fields)) + "\n")
    columns = {
        f["name"]: DUCK_TYPES[f["type"]] + ("[]" if f["mv"] else "") for f in present
    }
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    cols = ", ".join(f"'{k}': '{v}'" for k, v in columns.items())
    con.execute(
        f"CREATE TABLE airline AS SELECT * FROM read_json('{path}', format='newline_delimited', columns={{{cols}}})"
    )
    return con


def load_queries() -> list[dict]:
    out = []
    for line in QUERIES.read_text().splitlines():
        line = line.strip()
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def duck_sql(q: dict) -> str:
    sql = q["hsqls"][0] if q.get("hsqls") else q["sql"]
    sql = sql.replace("`", '"')
    sql = re.sub(r"ARRAY_CONTAINS\(", "list_contains(", sql, flags=re.I)
    sql = re.sub(r"\bmytable\b", "airline", sql)
    # The full answer: the LIMIT is applied when comparing.
    return re.sub(r"\s+LIMIT\s+\d+\s*$", "", sql.strip(), flags=re.I)


def limit_of(sql: str) -> int:
    m = re.search(r"\bLIMIT\s+(\d+)\s*$", sql.strip(), flags=re.I)
    return int(m.group(1)) if m else 10


def order_positions(sql: str) -> list[int]:
    """Positions in the select list of the ORDER BY columns (all of them, or none)."""
    m = re.search(r"\bORDER\s+BY\s+(.*?)(\s+LIMIT\s+\d+)?\s*$", sql, flags=re.I | re.S)
    if not m:
        return []
    select = re.search(r"^\s*SELECT\s+(.*?)\s+FROM\s", sql, flags=re.I | re.S)
    items = [s.strip().strip('"').lower() for s in select.group(1).split(",")]
    positions = []
    for key in m.group(1).split(","):
        name = re.sub(r"\s+(ASC|DESC)$", "", key.strip(), flags=re.I).strip('"').lower()
        if name not in items:
            return []
        positions.append(items.index(name))
    return positions


def same_value(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        if math.isinf(a) or math.isinf(b):
            return a == b
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-6)
    return str(a) == str(b)


def same_row(a: list, b: tuple) -> bool:
    return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))


def mismatch(sql: str, got: list[list], full: list[tuple]) -> str | None:
    """Why `got` is not an answer Pinot could give, or None."""
    want = min(limit_of(sql), len(full))
    if len(got) != want:
        return f"{len(got)} rows, expected {want}"
    unused = list(range(len(full)))
    for row in got:
        found = next((i for i in unused if same_row(row, full[i])), None)
        if found is None:
            return f"row {row} is not in the reference answer (first rows: {full[:3]})"
        unused.remove(found)
    keys = order_positions(sql)
    if keys:
        for n, (row, ref) in enumerate(zip(got, full)):
            if not all(same_value(row[k], ref[k]) for k in keys):
                return f"row {n} is {row}, out of order (the reference has {ref} there)"
    return None


def broker_query(r: Riffle, sql: str) -> dict:
    req = urllib.request.Request(
        r.broker_url + "/query/sql",
        data=json.dumps({"sql": sql}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())


def run_all(r: Riffle, con, queries: list[dict]) -> list[str]:
    failures = []
    for n, q in enumerate(queries):
        sql = re.sub(r"\bmytable\b", "airlineStats", q["sql"])
        answer = broker_query(r, sql)
        if answer.get("exceptions"):
            failures.append(f"#{n} {sql}\n    error: {answer['exceptions'][0].get('message', '')[:300]}")
            continue
        got = answer["resultTable"]["rows"]
        full = con.execute(duck_sql(q)).fetchall()
        why = mismatch(q["sql"], got, full)
        if why:
            failures.append(f"#{n} {sql}\n    {why}")
    return failures


@pytest.fixture(scope="module")
def airline(tmp_path_factory):
    base = tmp_path_factory.mktemp("airline")
    rows = avro_rows()
    fields = schema_fields()
    con = duck_reference(rows, fields, base)
    r = Riffle(base / "data", base, name="airline")
    try:
        r.start()
        for p in range(PARTITIONS):
            append_lines(
                r.stream_file(TOPIC, p),
                [json.dumps(row) for row in rows[p::PARTITIONS]],
            )
        config = json.loads((AIRLINE / "airlineStats_realtime_table_config.json").read_text())
        stream = config["ingestionConfig"]["streamIngestionConfig"]["streamConfigMaps"][0]
        threshold = stream["realtime.segment.flush.threshold.size"]
        config["ingestionConfig"]["streamIngestionConfig"]["streamConfigMaps"][0] = {
            "streamType": "file",
            "stream.file.topic.name": TOPIC,
            "stream.file.decoder.class.name": stream["stream.kafka.decoder.class.name"],
            "stream.file.consumer.prop.auto.offset.reset": "smallest",
            "realtime.segment.flush.threshold.time": stream["realtime.segment.flush.threshold.time"],
            "realtime.segment.flush.threshold.size": threshold,
        }
        schema = json.loads((AIRLINE / "airlineStats_schema.json").read_text())
        status, body = r.post("/schemas", schema)
        assert status == 200, body
        status, body = r.post("/tables", config)
        assert status == 200, body
        r.wait_count("airlineStats", len(rows), timeout=60)
        yield r, con, rows
    finally:
        r.kill()


def test_the_query_file_has_200_queries():
    assert len(load_queries()) == 200


def test_airline_queries_on_consuming_then_sealed_segments_answer_as_duckdb(airline):
    r, con, rows = airline
    queries = load_queries()
    segments = r.get_json("/segments/airlineStats")
    assert segments, segments
    failures = run_all(r, con, queries)
    assert not failures, f"{len(failures)} of {len(queries)} differ on consuming segments:\n" + "\n".join(failures)

    # Seal every segment, then ask again.
    status, body = r.post("/tables/airlineStats/forceCommit")
    assert status == 200, body
    job = body["forceCommitJobId"]

    def pending():
        return r.get_json(f"/tables/forceCommitStatus/{job}")["numberOfSegmentsYetToBeCommitted"]

    wait_until("segments sealed", pending, lambda n: n == 0, 60)
    assert r.count("airlineStats") == len(rows)
    failures = run_all(r, con, queries)
    assert not failures, f"{len(failures)} of {len(queries)} differ on sealed segments:\n" + "\n".join(failures)
