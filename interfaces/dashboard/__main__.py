"""``python -m interfaces.dashboard [--host H] [--port P] [--results FILE ...]``: same as ``genz dashboard``."""

import argparse

from interfaces.dashboard import run

parser = argparse.ArgumentParser(prog="python -m interfaces.dashboard")
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=8050)
parser.add_argument("--results", nargs="*", default=[])
args = parser.parse_args()
run(args.host, args.port, args.results)
