"""``python -m validation.collect --out DIR [--dry-run] [--quick] [--models a,b] [--run run2 --append]``."""

from __future__ import annotations

import argparse
import shlex
import sys

from validation.collect.runner import KINDS, collect
from validation.dataset import load_dataset


def _names(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m validation.collect",
        description="Measure GEMM, attention, memory bandwidth and whole-decoder rows on a CUDA GPU.",
    )
    parser.add_argument("--out", required=True, help="directory to write the dataset into")
    parser.add_argument("--dry-run", action="store_true", help="tiny shapes on the CPU (tests the pipeline)")
    parser.add_argument("--quick", action="store_true", help="a few points of each kind (minutes, not an hour)")
    parser.add_argument("--models", type=_names, default=None,
                        help="comma-separated workloads presets for e2e.csv (default llama-3-8b,llama-3.2-1b)")
    parser.add_argument("--only", type=_names, default=KINDS, help=f"subset of {','.join(KINDS)}")
    parser.add_argument("--run", default="run1", help="label of this run in column `run` (default run1)")
    parser.add_argument("--append", action="store_true", help="add rows to an existing dataset (a second run)")
    parser.add_argument("--device", default="cuda", help="PyTorch device (default cuda)")
    args = parser.parse_args(argv)
    command = "python -m validation.collect " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    try:
        counts = collect(args.out, models=args.models, quick=args.quick, dry_run=args.dry_run, run=args.run,
                         append=args.append, kinds=args.only, device=args.device, command=command)
        ds = load_dataset(args.out)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(", ".join(f"{k}: {n} rows" for k, n in counts.items()))
    print(ds.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
