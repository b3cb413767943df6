"""Run every notebook here and write a static HTML render of each (figures included) beside one
shared plotly.min.js, so a reader sees the results without running anything.

    python notebooks/render.py [--out DIR]     # default: out/notebooks (not tracked)

Needs the ``notebooks`` extra (nbformat, nbclient, ipykernel). The test run does the same into a
temporary folder, or into ``$GENZ_NOTEBOOK_HTML`` when that is set (tests/test_notebooks.py).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def execute(path: Path):
    """The notebook at ``path`` run top to bottom, figures stored as plotly figures."""
    import nbclient
    import nbformat

    os.environ["PLOTLY_RENDERER"] = "plotly_mimetype"  # the kernel inherits it
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "notebooks", help="folder for the HTML pages")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from interfaces.reports.notebook_html import write_notebook_html

    args.out.mkdir(parents=True, exist_ok=True)
    for path in sorted(HERE.glob("*.ipynb")):
        page = write_notebook_html(execute(path), args.out / f"{path.stem}.html", source=path.name)
        print("wrote", page)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
