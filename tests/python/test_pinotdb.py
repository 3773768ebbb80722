"""The transcript example through pinotdb's DB-API, as a Pinot user would query it."""

from __future__ import annotations

import json

from pinotdb.db import Type

from riffle_harness import Riffle, expected_transcript_averages, transcript_lines


def test_count(transcript: Riffle):
    assert transcript.query("SELECT COUNT(*) FROM transcript") == [[12]]


def test_average_per_subject_matches_the_file(transcript: Riffle):
    expected = expected_transcript_averages(transcript_lines())
    conn = transcript.connect()
    cur = conn.cursor()
    cur.execute("SELECT subject, AVG(score) FROM transcript GROUP BY subject")
    rows = cur.fetchall()

    # Column names and DB-API type codes come from the broker's dataSchema.
    assert [d[0] for d in cur.description] == ["subject", "avg(score)"]
    assert cur.description[0][1] == Type.STRING
    assert cur.description[1][1] == Type.NUMBER

    got = {r[0]: r[1] for r in rows}
    assert sorted(got) == sorted(expected), rows
    for subject, want in expected.items():
        assert abs(got[subject] - want) < 1e-6, f"{subject}: {got[subject]} != {want}"

    # pinotdb refuses responses without these (Pinot's query statistics).
    stats = cur.query_stats
    assert stats["numServersResponded"] >= stats["numServersQueried"] >= 1, stats
    assert stats["totalDocs"] == 12, stats
    assert stats["numDocsScanned"] == 12, stats
    conn.close()


def test_pyformat_parameters(transcript: Riffle):
    lines = [json.loads(l) for l in transcript_lines()]
    maths = sum(1 for r in lines if r["subject"] == "Maths")
    assert maths > 0
    rows = transcript.query(
        "SELECT COUNT(*) FROM transcript WHERE subject = %(s)s", {"s": "Maths"}
    )
    assert rows == [[maths]]

    # pinotdb escapes quotes client-side ('' inside a string literal).
    rows = transcript.query(
        "SELECT COUNT(*) FROM transcript WHERE lastName = %(n)s", {"n": "O'Brien"}
    )
    assert rows == [[0]]

    rows = transcript.query(
        "SELECT firstName, lastName FROM transcript WHERE studentID = %(id)s ORDER BY subject",
        {"id": 209},
    )
    assert rows and all(r == ["Jane", "Doe"] for r in rows), rows
    assert len(rows) == sum(1 for r in lines if r["studentID"] == 209)
