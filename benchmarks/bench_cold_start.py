"""Cold start of the command line: ``genz predict`` (defaults) as a new process, N times.

    python benchmarks/bench_cold_start.py [--runs 21]

Prints the median and minimum wall time next to a bare ``python -c "import numpy"`` measured in
the same run (the floor any numpy program pays here). Goal (issue 14): no slower than 0.25 s, the
figure when the goal was set; compare two checkouts by running this script in each.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], runs: int) -> list[float]:
    """Wall seconds of ``runs`` fresh processes of ``cmd`` (run from the checkout's root)."""
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=21)
    a = ap.parse_args()
    timed([sys.executable, "-m", "interfaces.cli", "predict"], 1)  # byte-compile once
    for label, cmd in (("genz predict", [sys.executable, "-m", "interfaces.cli", "predict"]),
                       ("python -c 'import numpy'", [sys.executable, "-c", "import numpy"])):
        s = timed(cmd, a.runs)
        print(f"{label}: median {statistics.median(s):.3f} s, min {min(s):.3f} s over {a.runs} runs"
              + (" (goal: no slower than 0.25 s)" if "predict" in label else ""))


if __name__ == "__main__":
    main()
