#!/usr/bin/env python3
"""Runs two `riffle` binaries side by side on the same benchmarks, alternating, and prints
each figure's median and the ratio new/old (higher is better for both kinds of figure).

    scripts/bench-compare.py OLD_RIFFLE NEW_RIFFLE [--rounds 3] [--only NAME,...]

Benchmarks (each a `riffle bench ...` command; both binaries get the same flags):
  ingest-1p  `bench ingest --partitions 1`: rows/s to queryable
  ingest-2p  `bench ingest --partitions 2`: rows/s to queryable
  seal       `bench seal --rounds 1 --latency-secs 0`: median rows/s to queryable with seals
             (and without, reported beside it)
  restart    `bench restart`: seconds until every unsealed row is queryable again after a
             crash (the ratio is old/new, so that higher is better here too)
  queries    `bench queries`: COUNT(*) p50 alone, its p99 beside two heavy GROUP BY
             clients, and the heavy query's p50 alone (times: old/new)

Round k runs old then new when k is even, new then old when it is odd. Before each run the
script waits (up to --cooldown seconds) for the 1-minute load average to fall below 0.6:
the benchmarks themselves load both cores. The load is printed before and after every run,
and a run that starts above 0.6 anyway is flagged BUSY. Build both binaries in release.
Standard library only."""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time

BENCHES = {
    "ingest-1p": (["bench", "ingest", "--partitions", "1", "--no-comparisons", "--latency-secs", "0"],
                  [("rows/s", r"riffle: rows/s to queryable\s+([\d,]+)", True)]),
    "ingest-2p": (["bench", "ingest", "--partitions", "2", "--no-comparisons", "--latency-secs", "0"],
                  [("rows/s", r"riffle: rows/s to queryable\s+([\d,]+)", True)]),
    "seal": (["bench", "seal", "--rounds", "1", "--latency-secs", "0"],
             [("rows/s with seals", r"median rows/s to queryable: no seal [\d,]+\s+seals ([\d,]+)", True),
              ("rows/s without seals", r"median rows/s to queryable: no seal ([\d,]+)", True)]),
    "restart": (["bench", "restart"],
                [("seconds to queryable", r"queryable again after ([\d.]+) s", False)]),
    "queries": (["bench", "queries", "--rows", "1000000", "--light", "100", "--repeat", "7"],
                [("COUNT(*) p50 ms", r"COUNT\(\*\) alone:\s+p50 ([\d.]+) ms", False),
                 ("COUNT(*) p99 beside heavy ms",
                  r"COUNT\(\*\) beside heavy:\s+p50 [\d.]+ ms\s+p90 [\d.]+ ms\s+p99 ([\d.]+) ms", False),
                 ("heavy p50 ms", r"heavy alone, default limits: p50 ([\d.]+) ms", False)]),
}


# A run starts only once the 1-minute load average is below this (the runs themselves load
# both cores; the load takes a few minutes to decay).
QUIET = 0.6


def load() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def cool_down(limit: float) -> None:
    end = time.monotonic() + limit
    while load() >= QUIET and time.monotonic() < end:
        time.sleep(2)


def run(binary: str, args: list[str], cooldown: float) -> tuple[str, float, float, float]:
    cool_down(cooldown)
    before = load()
    t = time.monotonic()
    out = subprocess.run([binary, *args], capture_output=True, text=True, check=False)
    took = time.monotonic() - t
    if out.returncode != 0:
        sys.exit(f"{binary} {' '.join(args)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out.stdout, before, load(), took


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--only", default=",".join(BENCHES))
    p.add_argument("--cooldown", type=float, default=300.0)
    a = p.parse_args()
    names = [n for n in a.only.split(",") if n]
    results: dict[tuple[str, str, str], list[float]] = {}
    print(f"old: {a.old}\nnew: {a.new}\nrounds: {a.rounds}, load at start {load():.2f}\n")
    for name in names:
        args, figures = BENCHES[name]
        for k in range(a.rounds):
            order = [("old", a.old), ("new", a.new)]
            if k % 2:
                order.reverse()
            for which, binary in order:
                out, before, after, took = run(binary, args, a.cooldown)
                vals = []
                for label, pattern, _ in figures:
                    m = re.search(pattern, out)
                    if not m:
                        sys.exit(f"{name}: no '{label}' in the output of {which}:\n{out}")
                    v = float(m.group(1).replace(",", ""))
                    results.setdefault((name, label, which), []).append(v)
                    vals.append(f"{label} {v:,.3f}")
                busy = "  BUSY" if before >= QUIET else ""
                print(f"{name:10} round {k + 1} {which}: {'; '.join(vals)}   "
                      f"(load {before:.2f} -> {after:.2f}, {took:.0f} s){busy}", flush=True)
    print("\nmedians and ratios (new/old for rates, old/new for times: higher is better)")
    worst = None
    for name in names:
        for label, _, higher_better in BENCHES[name][1]:
            old = statistics.median(results[(name, label, "old")])
            new = statistics.median(results[(name, label, "new")])
            ratio = new / old if higher_better else old / new
            worst = ratio if worst is None else min(worst, ratio)
            print(f"  {name:10} {label:22} old {old:>14,.3f}   new {new:>14,.3f}   ratio {ratio:.3f}")
    print(f"\nload at end {load():.2f}; lowest ratio {worst:.3f} (goal >= 0.97)")


if __name__ == "__main__":
    main()
