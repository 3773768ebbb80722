"""The DuckDB side of `riffle bench query`: the same rows in an in-memory table, the same
queries, timed one at a time on request.

Protocol (one JSON object per line):
- stdin, first line: {"rows": N, "threads": T, "queries": ["sql", ...], "generator": "sql"}
  where "generator" is a SELECT over `range(N) t(i)` producing the table's rows.
- stdout: {"ready": true, "load_secs": s, "rows": n} once the table is built.
- then each stdin line {"run": k} runs query k and answers
  {"ms": elapsed, "rows": row_count, "first": [values of the first row]}, or {"error": text}.
- stdin closed: exit.
Timestamps are answered as epoch milliseconds, decimals as floats.
"""
import datetime
import decimal
import json
import sys
import time

import duckdb


def plain(v):
    if isinstance(v, datetime.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=datetime.timezone.utc)
        return int(v.timestamp() * 1000)
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, (int, float, str)) or v is None:
        return v
    return str(v)


def main():
    cfg = json.loads(sys.stdin.readline())
    con = duckdb.connect(":memory:")
    con.execute("SET enable_progress_bar = false")
    con.execute(f"SET threads = {int(cfg['threads'])}")
    t = time.perf_counter()
    con.execute("CREATE TABLE events AS " + cfg["generator"])
    rows = con.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    print(json.dumps({"ready": True, "load_secs": time.perf_counter() - t, "rows": rows}),
          flush=True)
    queries = cfg["queries"]
    for line in sys.stdin:
        req = json.loads(line)
        try:
            t = time.perf_counter()
            out = con.execute(queries[req["run"]]).fetchall()
            ms = (time.perf_counter() - t) * 1000.0
            first = [plain(v) for v in out[0]] if out else []
            print(json.dumps({"ms": ms, "rows": len(out), "first": first}), flush=True)
        except Exception as e:  # noqa: BLE001 - reported to the caller
            print(json.dumps({"error": str(e)}), flush=True)


if __name__ == "__main__":
    main()
