"""Fuzz the tar stream parser for a while: hostile streams from testbed/tarfuzz.py.

Every stream must give safe entries or a CollectError (any other exception is a
bug and stops the run with its seed); memory is traced per stream. Prints streams
per second, how they ended, the slowest parse and the peak memory of any one.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from testbed.tarfuzz import MAX_TOTAL, hostile_stream, parse_bounded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--seed", type=int, default=None)
    arguments = parser.parse_args()
    seed = arguments.seed if arguments.seed is not None else random.SystemRandom().randrange(2**31)
    print(f"seed {seed} (--seed {seed} repeats this run)")
    rng = random.Random(seed)
    started = time.perf_counter()
    streams = refused = with_entries = peak = 0
    slowest = 0.0
    while time.perf_counter() - started < arguments.seconds:
        data = hostile_stream(rng)
        began = time.perf_counter()
        try:
            outcome = parse_bounded(data)
        except Exception:
            example = Path("fuzz-failure.tar")
            example.write_bytes(data)
            print(f"BUG on stream {streams} of seed {seed}; the input is in {example}")
            raise
        slowest = max(slowest, time.perf_counter() - began)
        streams += 1
        refused += outcome.refused
        with_entries += outcome.entries > 0
        peak = max(peak, outcome.peak_bytes)
    elapsed = time.perf_counter() - started
    print(f"{streams} hostile streams in {elapsed:.0f} s ({streams / elapsed:.0f}/s), 0 crashes")
    print(f"  refused with a clear error: {refused}; parsed with safe entries: {with_entries}")
    print(f"  slowest parse: {slowest * 1000:.1f} ms")
    print(f"  peak memory of one parse: {peak / 1024:.0f} KiB (limit {MAX_TOTAL // 1024} KiB)")


if __name__ == "__main__":
    main()
