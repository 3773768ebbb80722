"""`riffle quickstart`: a server with a live `events` table fed by a generator, queried
with pinotdb while it runs; it stops by itself after --duration-secs."""

from __future__ import annotations

import subprocess
import time

import pytest

from riffle_harness import Riffle, free_ports, riffle_bin, server_env, wait_until


def test_quickstart_serves_a_growing_events_table(tmp_path, request):
    cport, bport = free_ports(2)
    data = tmp_path / "quickstart-data"
    out_path = tmp_path / "quickstart.out"
    err_path = tmp_path / "quickstart.log"
    request.node.riffle_logs = [out_path, err_path]  # shown if the test fails
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(
            [
                str(riffle_bin()),
                "quickstart",
                "--data-dir",
                str(data),
                "--controller-port",
                str(cport),
                "--broker-port",
                str(bport),
                "--duration-secs",
                "8",
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=server_env(),
        )
    try:
        # A client of the quickstart's broker (no server of our own is started).
        client = Riffle(data, tmp_path, name="quickstart-client")
        client.controller_port, client.broker_port = cport, bport

        def count() -> int:
            assert proc.poll() is None, "the quickstart exited early"
            return client.count("events")

        first = wait_until("events to arrive", count, lambda c: c > 0)
        time.sleep(2)
        second = count()
        assert second > first > 0, (first, second)

        # --duration-secs 8: it stops at its first 5 s status tick after 8 s.
        try:
            rc = proc.wait(timeout=25)
        except subprocess.TimeoutExpired:
            pytest.fail(
                "the quickstart did not exit by itself within 25 s of the second query "
                "(--duration-secs 8); its output is below"
            )
        stdout = out_path.read_text(errors="replace")
        stderr = err_path.read_text(errors="replace")
        assert rc == 0, f"quickstart exited {rc}\nstdout:\n{stdout}\nstderr:\n{stderr[-4000:]}"
        assert f"http://127.0.0.1:{bport}" in stdout, stdout
        assert "SELECT COUNT(*) FROM events" in stdout, stdout
        assert "/query/sql" in stdout, stdout
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
