"""Time to generate simulated traffic and write it to Parquet.

Run: ``.venv/bin/python bench/sim.py`` (``--count 200000`` for a quicker run).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from fraudstream.sim.generator import SimulationConfig, simulate
from fraudstream.sim.output import write_table


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=1_000_000)
    args = parser.parse_args()
    path = Path(tempfile.mkdtemp()) / "sim.parquet"
    start = time.perf_counter()
    table = simulate(SimulationConfig(count=args.count, seed=7, duration_ms=30 * 86_400_000))
    generated = time.perf_counter() - start
    write_table(table, path)
    total = time.perf_counter() - start
    print(
        f"{args.count:,} events: generated in {generated:.1f} s, written to Parquet in {total:.1f} s "
        f"({args.count / total:,.0f} events/s, {path.stat().st_size / 1e6:.0f} MB)"
    )


if __name__ == "__main__":
    main()
