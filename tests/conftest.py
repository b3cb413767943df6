"""Test-wide settings: Hypothesis runs a fixed, derandomized profile unless told otherwise.

``python -m pytest`` (CI and README) uses the ``ci`` profile: examples derived from each test's
source, no example database, so every fresh checkout runs the same cases. ``fuzz-ci`` is the same,
derandomized, with more examples (``.ci/run``'s longer fuzz step: CI never passes or fails by chance).
``HYPOTHESIS_PROFILE=fuzz`` draws new random examples to look for failures on a developer's machine;
each failure found that way is kept as an explicit ``@example`` on its test.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None, print_blob=True, deadline=None)
settings.register_profile("fuzz-ci", derandomize=True, database=None, print_blob=True, deadline=None,
                          max_examples=500)
settings.register_profile("fuzz", derandomize=False, database=None, print_blob=True, deadline=None,
                          max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_report_header(config) -> str:
    return f"hypothesis profile: {settings._current_profile}"
