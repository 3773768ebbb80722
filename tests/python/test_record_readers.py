"""The record readers through `riffle CreateSegment` and `riffle SegmentDump`: the same rows
written by each format's own library (Parquet and ORC by pyarrow, Avro by fastavro, CSV and JSON by
Python) become identical segments, and a segment read back as records gives it again; Pinot's airline Avro file becomes a segment whose
transformed `ts` holds `DaysSinceEpoch` days on every row; a bad file stops with its name
and record, and leaves no segment behind.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import fastavro
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import orc

from riffle_harness import REPO, run_riffle

AIRLINE = REPO / "tests" / "data" / "airline"

SCHEMA = {
    "schemaName": "people",
    "dimensionFieldSpecs": [
        {"name": "id", "dataType": "INT"},
        {"name": "name", "dataType": "STRING"},
        {"name": "tags", "dataType": "STRING", "singleValueField": False},
        {"name": "ok", "dataType": "BOOLEAN"},
    ],
    "metricFieldSpecs": [{"name": "score", "dataType": "DOUBLE"}],
    "dateTimeFieldSpecs": [
        {"name": "ts", "dataType": "TIMESTAMP", "format": "1:MILLISECONDS:EPOCH", "granularity": "1:MILLISECONDS"}
    ],
}
TABLE = {
    "tableName": "people",
    "tableType": "OFFLINE",
    "segmentsConfig": {"timeColumnName": "ts", "replication": "1"},
    "tenants": {},
    "tableIndexConfig": {"invertedIndexColumns": ["name"]},
    "metadata": {},
}
ROWS = [
    {"id": 1, "name": "ann", "tags": ["a", "b"], "ok": True, "score": 2.5, "ts": 1_700_000_000_000},
    {"id": 2, "name": "bo, \"jr\"", "tags": ["c"], "ok": False, "score": 7.0, "ts": 1_700_000_000_001},
    {"id": 3, "name": None, "tags": ["solo"], "ok": True, "score": -1.25, "ts": 1_700_000_003_000},
    {"id": 4, "name": "dé", "tags": ["x", "y", "z"], "ok": False, "score": 0.0, "ts": 1_700_000_004_000},
]


def write_inputs(d: Path) -> dict[str, Path]:
    files = {}
    # JSON lines, with a field outside the schema.
    p = d / "json" / "people.json"
    p.parent.mkdir()
    p.write_text("".join(json.dumps({**r, "extra": {"x": 1}}) + "\n" for r in ROWS))
    files["JSON"] = p.parent
    # CSV: a header line, quoting, ';' between multi-values.
    p = d / "csv" / "people.csv"
    p.parent.mkdir()
    with open(p, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "name", "tags", "ok", "score", "ts", "extra"])
        for r in ROWS:
            w.writerow([r["id"], r["name"] or "", ";".join(r["tags"]), str(r["ok"]).lower(), r["score"], r["ts"], "zz"])
    files["CSV"] = p.parent
    # Avro by fastavro, deflate-compressed, timestamp-millis.
    p = d / "avro" / "people.avro"
    p.parent.mkdir()
    schema = {
        "type": "record",
        "name": "Person",
        "fields": [
            {"name": "id", "type": "int"},
            {"name": "name", "type": ["null", "string"]},
            {"name": "tags", "type": {"type": "array", "items": "string"}},
            {"name": "ok", "type": "boolean"},
            {"name": "score", "type": "double"},
            {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        ],
    }
    with open(p, "wb") as f:
        import datetime as dt

        recs = [{**r, "ts": dt.datetime.fromtimestamp(r["ts"] / 1000, dt.timezone.utc)} for r in ROWS]
        fastavro.writer(f, fastavro.parse_schema(schema), recs, codec="deflate", sync_interval=64)
    files["AVRO"] = p.parent
    # Parquet by pyarrow: microsecond timestamps, a list column, zstd, two row groups.
    p = d / "parquet" / "people.parquet"
    p.parent.mkdir()
    t = pa.table(
        {
            "id": pa.array([r["id"] for r in ROWS], pa.int32()),
            "name": pa.array([r["name"] for r in ROWS], pa.string()),
            "tags": pa.array([r["tags"] for r in ROWS], pa.list_(pa.string())),
            "ok": pa.array([r["ok"] for r in ROWS]),
            "score": pa.array([r["score"] for r in ROWS], pa.float64()),
            "ts": pa.array([r["ts"] * 1000 for r in ROWS], pa.timestamp("us")),
            "extra": pa.array(["zz"] * len(ROWS)),
        }
    )
    pq.write_table(t, p, compression="zstd", row_group_size=2)
    files["PARQUET"] = p.parent
    # ORC by pyarrow: the same table, zstd, small stripes.
    p = d / "orc" / "people.orc"
    p.parent.mkdir()
    orc.write_table(t, p, compression="zstd", stripe_size=64 * 1024)
    files["ORC"] = p.parent
    return files


def create_segment(d: Path, data_dir: Path, fmt: str, schema: dict, table: dict, *extra: str):
    (d / "schema.json").write_text(json.dumps(schema))
    (d / "table.json").write_text(json.dumps(table))
    out = d / f"out-{fmt}"
    r = run_riffle(
        "CreateSegment",
        "-dataDir", str(data_dir),
        "-format", fmt,
        "-outDir", str(out),
        "-tableConfigFile", str(d / "table.json"),
        "-schemaFile", str(d / "schema.json"),
        *extra,
    )
    return r, out


def dump(segment: Path) -> list[dict]:
    r = run_riffle("SegmentDump", "-segmentDir", str(segment))
    assert r.returncode == 0, r.stderr
    return [json.loads(l) for l in r.stdout.splitlines()]


def test_each_format_gives_the_same_segment(tmp_path: Path):
    inputs = write_inputs(tmp_path)
    dumps = {}
    for fmt, data_dir in inputs.items():
        r, out = create_segment(tmp_path, data_dir, fmt, SCHEMA, TABLE)
        assert r.returncode == 0, (fmt, r.stderr)
        assert "people_0" in r.stdout and "4 rows" in r.stdout, (fmt, r.stdout)
        dumps[fmt] = dump(out / "people_0")
    expected = [
        {
            "id": r["id"],
            "name": r["name"] if r["name"] is not None else "null",
            "tags": r["tags"],
            "ok": r["ok"],
            "score": r["score"],
        }
        for r in ROWS
    ]
    # A segment read back as records gives the same segment again.
    r, out = create_segment(tmp_path, tmp_path / "out-JSON", "SEGMENT", SCHEMA, TABLE)
    assert r.returncode == 0, r.stderr
    dumps["SEGMENT"] = dump(out / "people_0")
    for fmt, rows in dumps.items():
        got = [{k: v for k, v in row.items() if k != "ts"} for row in rows]
        assert got == expected, (fmt, rows)
        # The same instants, whatever unit the file held them in.
        assert [row["ts"] for row in rows] == [r["ts"] for r in dumps["JSON"]], (fmt, rows)
    assert len(dumps["JSON"]) == len(ROWS)


def test_the_airline_avro_file_with_its_transforms(tmp_path: Path):
    schema = json.loads((AIRLINE / "airlineStats_schema.json").read_text())
    config = json.loads((AIRLINE / "airlineStats_realtime_table_config.json").read_text())
    config["tableType"] = "OFFLINE"
    config["tableIndexConfig"].pop("streamConfigs", None)
    config.get("ingestionConfig", {}).pop("streamIngestionConfig", None)
    data = tmp_path / "in"
    data.mkdir()
    (data / "airline.avro").write_bytes((AIRLINE / "airlineStats_data.avro").read_bytes())
    with open(AIRLINE / "airlineStats_data.avro", "rb") as f:
        source = list(fastavro.reader(f))
    r, out = create_segment(tmp_path, data, "AVRO", schema, config, "-numThreads", "2")
    assert r.returncode == 0, r.stderr
    name = f"{config['tableName']}_0"
    rows = dump(out / name)
    assert len(rows) == len(source)
    days = sorted(s["DaysSinceEpoch"] for s in source)
    got = sorted(row["ts"] for row in rows)
    # ts is a TIMESTAMP: the dump writes it as text; DaysSinceEpoch days in milliseconds.
    import datetime as dt

    want = sorted(
        (dt.datetime(1970, 1, 1) + dt.timedelta(days=d)).strftime("%Y-%m-%dT%H:%M:%S") for d in days
    )
    assert [g[:19] for g in got] == want


def test_a_bad_record_names_its_file_and_leaves_no_segment(tmp_path: Path):
    data = tmp_path / "in"
    data.mkdir()
    (data / "a.json").write_text(json.dumps(ROWS[0]) + "\n")
    (data / "b.json").write_text(json.dumps(ROWS[0]) + "\n" + '{"id": "not a number"}\n')
    r, out = create_segment(tmp_path, data, "JSON", SCHEMA, TABLE)
    assert r.returncode != 0
    assert "b.json" in r.stderr and "record 2" in r.stderr, r.stderr
    assert (out / "people_0").exists(), "the good file's segment is built"
    assert not (out / "people_1").exists() and not list(out.glob("*.tmp")), list(out.iterdir())
    # Existing segments are not replaced without -overwrite.
    (data / "b.json").unlink()
    r, _ = create_segment(tmp_path, data, "JSON", SCHEMA, TABLE)
    assert r.returncode != 0 and "-overwrite" in r.stderr, r.stderr
    r, _ = create_segment(tmp_path, data, "JSON", SCHEMA, TABLE, "-overwrite")
    assert r.returncode == 0, r.stderr
    # Formats Riffle does not read yet are refused by name.
    r, _ = create_segment(tmp_path, data, "THRIFT", SCHEMA, TABLE)
    assert r.returncode != 0 and "THRIFT" in r.stderr and "not read yet" in r.stderr, r.stderr
