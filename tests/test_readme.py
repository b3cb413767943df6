"""README.md as a script: every `genz` command of its shell blocks runs, in order, in a clean folder,
exits 0, and prints what the README's comment quotes ("...") where it quotes output. Skipped: the
install lines (CI runs them) and `genz dashboard` (a server that runs until stopped)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP = ("genz dashboard",)


def readme_commands() -> list[tuple[str, str]]:
    """(command, quoted output or '') of every genz line in README.md's bash blocks, in order."""
    text = (ROOT / "README.md").read_text()
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = line.strip()
            if not line.startswith("genz ") or line.startswith(SKIP):
                continue
            cmd, _, comment = line.partition("  #")
            quoted = re.findall(r'"([^"]+)"', comment)
            out.append((cmd.strip(), quoted[0] if quoted else ""))
    return out


def test_readme_has_commands():
    cmds = [c for c, _ in readme_commands()]
    assert len(cmds) >= 20 and any(c.startswith("genz recommend") for c in cmds)


@pytest.mark.slow
def test_every_readme_command_runs_in_order(tmp_path):
    for name in ("docs", "validation"):  # the files the README's commands name, as in a checkout
        (tmp_path / name).symlink_to(ROOT / name)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), COLUMNS="160")
    genz = f"{shlex.quote(sys.executable)} -m interfaces.cli"
    for cmd, quoted in readme_commands():
        shell = genz + cmd[len("genz"):]
        r = subprocess.run(["bash", "-c", shell], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, f"README command failed: {cmd}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
        if quoted:
            assert quoted.split(" ... ")[0] in r.stdout + r.stderr, f"{cmd}: README says {quoted!r}"
