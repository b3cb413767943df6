"""Collection settings for ``python -m pytest`` (the suite in tests/ and the packages' doctests)."""

import importlib.util

# plugins under tests/ register policies when imported: only the tests that restore the registries load them
collect_ignore_glob = ["tests/plugins/*"]
# the dashboard is an optional part (pip install -e '.[dashboard]'); its modules import dash
if importlib.util.find_spec("dash") is None:
    collect_ignore_glob.append("interfaces/dashboard/*")
