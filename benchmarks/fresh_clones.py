"""Does ``python -m pytest`` give the same result on fresh checkouts? Clones the repository N times
into a temporary folder, runs the suite in each (the derandomized CI Hypothesis profile), and prints
each run's outcome counts and whether they agree.

    python benchmarks/fresh_clones.py            # 3 clones
    python benchmarks/fresh_clones.py -n 20      # the issue's 20 (about 2-3 minutes each here)
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_once(workdir: Path, i: int, commit: str) -> str:
    clone = workdir / f"clone{i}"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "checkout", "-q", commit], check=True)  # every clone the same commit
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=--doctest-modules",
                        "-q", "-rN"], cwd=clone,
                       capture_output=True, text=True, env={"PYTHONPATH": str(clone), "PATH": "/usr/bin:/bin",
                                                             "HOME": str(workdir)})
    counts = re.findall(r"(\d+) (passed|failed|skipped|error|errors)", r.stdout)
    outcome = ", ".join(f"{n} {k}" for n, k in counts) or f"exit {r.returncode}"
    return f"exit {r.returncode}: {outcome}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=3, help="fresh clones to test [3]")
    n = ap.parse_args().n
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    print(f"commit {commit[:12]}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        results = []
        for i in range(n):
            results.append(run_once(Path(tmp), i, commit))
            print(f"clone {i + 1}/{n}: {results[-1]}", flush=True)
    same = len(set(results)) == 1
    print(f"{n} fresh clones: {'identical results' if same else 'DIFFERENT results'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
