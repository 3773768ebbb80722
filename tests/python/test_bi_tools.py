"""What BI tools send to Pinot, through the clients they use, against the transcript example.

- Superset (through pinotdb's SQLAlchemy dialect): its Pinot engine spec's time grains,
  `CAST(DATE_TRUNC('<grain>', CAST(col AS TIMESTAMP)) AS TIMESTAMP)` and, for 5/10/15/30
  minutes, `CAST(ROUND(DATE_TRUNC('minute', CAST(col AS TIMESTAMP)), <ms>) AS TIMESTAMP)`,
  in a time-series chart's query shape (the expression repeated in GROUP BY, no alias reuse).
- Grafana's Pinot plugin (through pinotdb's DB-API): `$__timeGroup` expands to
  `DATETIMECONVERT(col, '1:MILLISECONDS:EPOCH', '1:MILLISECONDS:EPOCH', '<granularity>')`
  and `$__timeFilter` to `col >= <from> AND col <= <to>` in the column's unit.

Every answer is compared with buckets computed here in Python from the rows themselves.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, text

from riffle_harness import Riffle, transcript_lines

COL = '"timestampInEpoch"'


def row_times() -> list[int]:
    return [json.loads(l)["timestampInEpoch"] for l in transcript_lines()]


def utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def truncate(ms: int, grain: str) -> datetime:
    d = utc(ms)
    if grain == "second":
        return d.replace(microsecond=0)
    if grain == "minute":
        return d.replace(second=0, microsecond=0)
    if grain == "hour":
        return d.replace(minute=0, second=0, microsecond=0)
    day = d.replace(hour=0, minute=0, second=0, microsecond=0)
    if grain == "day":
        return day
    if grain == "week":
        return day - timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    if grain == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    if grain == "year":
        return day.replace(month=1, day=1)
    raise ValueError(grain)


def as_datetime(v) -> datetime:
    """A TIMESTAMP as pinotdb hands it over (text `2019-10-24 07:00:00.0`, or a datetime)."""
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=timezone.utc)
    return datetime.strptime(str(v), "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=timezone.utc)


GRAINS = ["second", "minute", "hour", "day", "week", "month", "quarter", "year"]
MINUTE_GRAINS = [5, 10, 15, 30]


@pytest.fixture
def superset(transcript: Riffle):
    engine = create_engine(
        f"pinot://127.0.0.1:{transcript.broker_port}/query/sql"
        f"?controller=http://127.0.0.1:{transcript.controller_port}/"
    )
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def superset_series(conn, grain_sql: str) -> Counter:
    sql = (
        f"SELECT {grain_sql} AS __timestamp, COUNT(*) AS count FROM transcript "
        f"GROUP BY {grain_sql} ORDER BY count DESC LIMIT 10000"
    )
    rows = conn.execute(text(sql)).fetchall()
    return Counter({as_datetime(r[0]): int(r[1]) for r in rows})


@pytest.mark.parametrize("grain", GRAINS)
def test_superset_time_grains(superset, grain):
    expr = f"CAST(DATE_TRUNC('{grain}', CAST({COL} AS TIMESTAMP)) AS TIMESTAMP)"
    want = Counter(truncate(ms, grain) for ms in row_times())
    assert superset_series(superset, expr) == want


@pytest.mark.parametrize("minutes", MINUTE_GRAINS)
def test_superset_minute_grains(superset, minutes):
    ms = minutes * 60_000
    expr = (
        f"CAST(ROUND(DATE_TRUNC('minute', CAST({COL} AS TIMESTAMP)), {ms}) AS TIMESTAMP)"
    )
    want = Counter(utc(t // ms * ms) for t in row_times())
    assert superset_series(superset, expr) == want


@pytest.mark.parametrize("granularity,bucket_ms", [("1:HOURS", 3_600_000), ("1:DAYS", 86_400_000), ("15:MINUTES", 900_000)])
def test_grafana_time_group_and_time_filter(transcript: Riffle, granularity, bucket_ms):
    times = sorted(row_times())
    start, end = times[1], times[-2]  # a filter that drops rows at both ends
    sql = (
        f"SELECT DATETIMECONVERT({COL}, '1:MILLISECONDS:EPOCH', '1:MILLISECONDS:EPOCH', "
        f"'{granularity}') AS \"time\", COUNT(*) AS \"metric\" FROM transcript "
        f"WHERE {COL} >= {start} AND {COL} <= {end} "
        f"GROUP BY DATETIMECONVERT({COL}, '1:MILLISECONDS:EPOCH', '1:MILLISECONDS:EPOCH', "
        f"'{granularity}') ORDER BY \"time\" LIMIT 100000"
    )
    rows = transcript.query(sql)
    want = sorted(Counter(t // bucket_ms * bucket_ms for t in times if start <= t <= end).items())
    assert [(int(r[0]), int(r[1])) for r in rows] == want


def test_grafana_datetrunc_and_epoch_functions(transcript: Riffle):
    rows = transcript.query(
        f"SELECT DATETRUNC('DAY', {COL}), TOEPOCHDAYS({COL}), COUNT(*) FROM transcript "
        f"GROUP BY DATETRUNC('DAY', {COL}), TOEPOCHDAYS({COL}) ORDER BY 1"
    )
    days = Counter(t // 86_400_000 for t in row_times())
    assert [(int(r[0]), int(r[1]), int(r[2])) for r in rows] == [
        (d * 86_400_000, d, n) for d, n in sorted(days.items())
    ]
