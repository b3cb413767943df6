"""Command-line value lists: ``1,2,4``, ranges ``1:256:x2`` (geometric) and ``128:512:128``."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

#: Values one axis may hold (a range such as 1:1000000000:1 is a typo, not a sweep).
MAX_VALUES = 10_000
_RANGE = re.compile(r"^(?P<a>\d+):(?P<b>\d+):(?P<x>x)?(?P<s>\d+(?:\.\d+)?)$")


def parse_values(text: str | Iterable, name: str = "value") -> list:
    """``"1,2,4"`` -> [1, 2, 4]; ``"1:256:x2"`` -> 1, 2, ... 256 (geometric);
    ``"128:512:128"`` -> 128, 256, 384, 512. Non-numeric items stay strings (``"h100,h200"``).

    >>> parse_values("1:16:x2")
    [1, 2, 4, 8, 16]
    """
    if not isinstance(text, str):
        return list(text)
    out: list = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        m = _RANGE.match(part)
        if m:
            a, b, s = int(m["a"]), int(m["b"]), float(m["s"])
            if (m["x"] and (s <= 1 or a < 1)) or (not m["x"] and s <= 0) or b < a:
                raise ValueError(f"{name}: bad range {part!r}; use start:stop:step (step > 0) or start:stop:xFACTOR "
                                 "(start >= 1, factor > 1) with stop >= start")
            count = (math.log(b / a) / math.log(s) if m["x"] else (b - a) / s) + 1
            if len(out) + count > MAX_VALUES:
                raise ValueError(f"{name}: range {part!r} has about {int(count):,} values; at most {MAX_VALUES:,} "
                                 "per axis (use a coarser step)")
            v = float(a)
            while v <= b + 1e-9:
                out.append(int(round(v)))
                v = v * s if m["x"] else v + s
        elif re.fullmatch(r"-?\d+", part):
            out.append(int(part))
        else:
            out.append(part)
    if not out:
        raise ValueError(f"{name}: no values given")
    return out
