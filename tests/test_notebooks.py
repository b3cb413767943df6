"""The notebooks in notebooks/ run top to bottom (as nbmake would) with only shipped data, end with
a conclusion printed from their own numbers, and render as static HTML pages with their figures
(into ``$GENZ_NOTEBOOK_HTML`` when set, else a temporary folder; ``python notebooks/render.py`` does
the same for a docs build).

Needs ``nbclient`` and ``ipykernel`` (the ``test`` extra); skipped with the reason when missing.
"""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_notebooks_are_stored_without_outputs():
    import json

    assert NOTEBOOKS, "no notebooks found"
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, f"{path.name}: clear outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_and_renders(path, monkeypatch, tmp_path):
    nbformat = pytest.importorskip("nbformat", reason="needs nbformat (pip install -e '.[test]')")
    nbclient = pytest.importorskip("nbclient", reason="needs nbclient (pip install -e '.[test]')")
    pytest.importorskip("ipykernel", reason="needs ipykernel (pip install -e '.[test]')")
    from interfaces.reports.notebook_html import PLOTLY_MIME, write_notebook_html

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("PLOTLY_RENDERER", "plotly_mimetype")  # figures as plotly data, no browser
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    figures = sum(PLOTLY_MIME in o.get("data", {}) for o in outputs)
    assert figures >= 1, f"{path.name}: no figure was drawn"
    # the notebook ends with a conclusion, printed by its last code cell from the run's numbers
    assert nb.cells[-2].cell_type == "markdown" and nb.cells[-2].source.startswith("## Conclusion")
    last = [o for o in nb.cells[-1].get("outputs", []) if o.output_type == "stream"]
    assert last and any(ch.isdigit() for ch in last[0].text), f"{path.name}: the conclusion prints no numbers"

    out = Path(os.environ.get("GENZ_NOTEBOOK_HTML") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    page = write_notebook_html(nb, out / f"{path.stem}.html", source=path.name).read_text()
    assert page.count("Plotly.newPlot") == figures and "<h2>Conclusion</h2>" in page
    assert last[0].text.splitlines()[0][:40] in page.replace("&#x27;", "'")
    assert (out / "plotly.min.js").stat().st_size > 1e6 and len(page) < 3e6  # one shared plotly.js


def test_notebook_page_renders_each_output_kind():
    pytest.importorskip("nbformat", reason="needs nbformat (pip install -e '.[test]')")
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    from interfaces.reports.notebook_html import PLOTLY_MIME, render_notebook_html

    fig = {"data": [{"type": "bar", "x": ["a"], "y": [1]}], "layout": {}}
    nb = new_notebook(cells=[
        new_markdown_cell("# Title\n\nSome **bold** text."),
        new_code_cell("x = 1 < 2", outputs=[
            new_output("stream", name="stdout", text="a < b\n"),
            new_output("execute_result", data={PLOTLY_MIME: fig, "text/plain": "Figure"}, execution_count=1),
            new_output("display_data", data={"text/html": "<table class='dataframe'></table>", "text/plain": "df"}),
            new_output("error", ename="E", evalue="v", traceback=["\x1b[0;31mE\x1b[0m: v"])])])
    page = render_notebook_html(nb, shared_plotlyjs=True)
    assert "<title>Title</title>" in page and "<strong>bold</strong>" in page
    assert "x = 1 &lt; 2" in page and "a &lt; b" in page and "\x1b" not in page and "E: v" in page
    assert page.count("Plotly.newPlot") == 1 and "<table class='dataframe'>" in page
    assert "src='plotly.min.js'" in page and len(page) < 100_000
    assert len(render_notebook_html(nb, shared_plotlyjs=False)) > 1_000_000  # inlined plotly.js
