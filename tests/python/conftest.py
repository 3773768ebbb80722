"""Fixtures of the Python end-to-end tests (helpers live in `riffle_harness.py`).

When a test fails, the logs of the servers it used are added to its failure report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator, Optional

import pytest

from riffle_harness import TRANSCRIPT_TOPIC, Riffle, Tansu, append_lines, transcript_lines


@pytest.fixture
def riffle_factory(tmp_path: Path) -> Iterator[Callable[..., Riffle]]:
    """Makes `Riffle` servers on data directories under the test's tmp dir; all are killed
    at teardown."""
    made: list[Riffle] = []

    def make(data_dir: Optional[Path] = None, name: str = "riffle") -> Riffle:
        d = data_dir or tmp_path / f"data-{len(made)}"
        r = Riffle(d, tmp_path, name=f"{name}-{len(made)}")
        made.append(r)
        return r

    make.servers = made  # type: ignore[attr-defined]
    yield make
    for r in made:
        r.kill()


@pytest.fixture
def tansu(tmp_path: Path, request) -> Iterator[Tansu]:
    t = Tansu(tmp_path)
    # The broker's log goes into the failure report too (see conftest.py).
    request.node.riffle_logs = [t.log]
    try:
        yield t
    finally:
        t.kill()


# Servers of session-scoped fixtures, so that their logs reach failure reports too (also
# when the fixture itself failed).
_shared_servers: list[Riffle] = []


@pytest.fixture(scope="session")
def transcript(tmp_path_factory) -> Iterator[Riffle]:
    """A running server, shared by the tests that use it, holding the transcript example
    ingested through the file stream: rows appended first, table created with
    `riffle AddTable`, all 12 rows counted."""
    base = tmp_path_factory.mktemp("transcript")
    r = Riffle(base / "data", base, name="transcript")
    _shared_servers.append(r)
    try:
        r.start()
        append_lines(r.stream_file(TRANSCRIPT_TOPIC), transcript_lines())
        r.add_transcript_table()
        r.wait_count("transcript", len(transcript_lines()))
        yield r
    finally:
        r.kill()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Adds the logs of the servers a failed test used to its report."""
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    logs: list[Path] = list(getattr(item, "riffle_logs", []))
    for value in getattr(item, "funcargs", {}).values():
        if isinstance(value, Riffle):
            logs.extend(value.logs)
        elif callable(value) and hasattr(value, "servers"):
            for r in value.servers:
                logs.extend(r.logs)
    if "transcript" in getattr(item, "fixturenames", ()):
        # Also when the shared fixture itself failed (then it is not in funcargs).
        for r in _shared_servers:
            logs.extend(r.logs)
    seen = set()
    for log in logs:
        if log in seen or not log.exists():
            continue
        seen.add(log)
        text = log.read_text(errors="replace")
        if len(text) > 20000:
            text = "[... earlier lines cut ...]\n" + text[-20000:]
        rep.sections.append((f"riffle log {log.name}", text))
