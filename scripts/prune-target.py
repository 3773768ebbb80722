#!/usr/bin/env python3
"""Removes stale test and binary executables from the debug build directory.

Every change to a crate gives its test binaries a new hash, and cargo never deletes the old
ones: on the development machine `target/debug/deps` grew by tens of gigabytes of
executables no build names any more, until the disk filled. This keeps what the current
build produced (asked of cargo itself: `cargo build --workspace --tests --bins
--message-format=json`, a no-op right after the build) and removes, from
`$CARGO_TARGET_DIR/debug/deps`, executables (and their `.d` files) that are not among them
and were not written in the last `--keep-hours` (default 6: other checkouts sharing the
directory keep what they built lately). Libraries (`.rlib`, `.rmeta`, `.so`) are never
touched, so nothing is recompiled but a removed binary, and cargo rebuilds a missing one
when it is next needed.

Names are compared as whole paths, never by crate-name stem: stems collide across crates
(several crates have a `conformance` test).

Usage: scripts/prune-target.py [--keep-hours H] [--dry-run]
Prints what it removed and how much space that freed; exits 0 unless cargo fails.
"""

import argparse
import json
import os
import stat
import subprocess
import sys
import time


def current_outputs() -> set:
    out = subprocess.run(
        ["cargo", "build", "--workspace", "--tests", "--bins", "--message-format=json"],
        check=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ).stdout
    keep = set()
    for line in out.splitlines():
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        if msg.get("reason") != "compiler-artifact":
            continue
        for f in msg.get("filenames") or []:
            keep.add(os.path.realpath(f))
        if msg.get("executable"):
            keep.add(os.path.realpath(msg["executable"]))
    return keep


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep-hours", type=float, default=6.0)
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args()
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(os.getcwd(), "target")
    deps = os.path.join(target, "debug", "deps")
    if not os.path.isdir(deps):
        print(f"nothing to prune: {deps} does not exist")
        return 0
    keep = current_outputs()
    # A binary's uplifted copy (`debug/riffle`) is a hard link of its file in deps: keep by
    # inode as well as by path.
    inodes = set()
    for f in keep:
        try:
            st = os.stat(f)
            inodes.add((st.st_dev, st.st_ino))
        except FileNotFoundError:
            pass
    if not keep:
        # Without the list of current outputs nothing can be judged stale.
        print("cargo named no current outputs: nothing removed")
        return 0
    cutoff = time.time() - args.keep_hours * 3600
    removed, freed = 0, 0
    for name in sorted(os.listdir(deps)):
        path = os.path.join(deps, name)
        if "." in name or os.path.realpath(path) in keep:
            continue
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        is_exe = stat.S_ISREG(st.st_mode) and st.st_mode & stat.S_IXUSR
        if not is_exe or st.st_mtime > cutoff or (st.st_dev, st.st_ino) in inodes:
            continue
        for victim in (path, path + ".d"):
            try:
                size = os.lstat(victim).st_size
                if not args.dry_run:
                    os.remove(victim)
                freed += size
            except FileNotFoundError:
                pass
        removed += 1
    verb = "would remove" if args.dry_run else "removed"
    print(
        f"{verb} {removed} stale executables from {deps} "
        f"({freed / 2**30:.1f} GiB); kept {len(keep)} current outputs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
