"""The transcript example through pinotdb's SQLAlchemy dialect (what Superset uses): table
names and columns come from the controller, rows from the broker."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect, text, types

from riffle_harness import Riffle


def engine_for(r: Riffle):
    return create_engine(
        f"pinot://127.0.0.1:{r.broker_port}/query/sql?controller=http://127.0.0.1:{r.controller_port}/"
    )


def test_table_names_and_columns(transcript: Riffle):
    engine = engine_for(transcript)
    try:
        insp = inspect(engine)
        assert "transcript" in insp.get_table_names()
        assert insp.has_table("transcript")

        columns = {c["name"]: c for c in insp.get_columns("transcript")}
        expected = {
            "studentID": types.BigInteger,  # INT (the dialect maps int and long alike)
            "firstName": types.String,
            "lastName": types.String,
            "gender": types.String,
            "subject": types.String,
            "score": types.Float,
            "timestampInEpoch": types.BigInteger,  # LONG
        }
        assert sorted(columns) == sorted(expected)
        for name, kind in expected.items():
            t = columns[name]["type"]
            t = t if isinstance(t, type) else type(t)
            assert issubclass(t, kind), f"{name}: {t} is not {kind}"
    finally:
        engine.dispose()


def test_execute_count(transcript: Riffle):
    engine = engine_for(transcript)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM transcript")).scalar() == 12
            rows = conn.execute(
                text("SELECT subject, COUNT(*) FROM transcript GROUP BY subject ORDER BY subject")
            ).fetchall()
            assert sum(r[1] for r in rows) == 12
            assert [r[0] for r in rows] == sorted(r[0] for r in rows)
    finally:
        engine.dispose()
