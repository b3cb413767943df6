"""A Plotly Dash app on localhost: change model, hardware, precision, parallelism, workload and
SLOs and see the what-if update; compare two hardware choices; open results files.

Dash is an optional extra: ``pip install -e ".[dashboard]"``.

>>> from interfaces.dashboard import create_app      # doctest: +SKIP
>>> create_app().run(host="127.0.0.1", port=8050)    # doctest: +SKIP
"""

from __future__ import annotations

MISSING_DASH = ('the dashboard needs Dash, an optional extra: pip install -e ".[dashboard]" '
                '(or pip install "dash>=2.16")')


def dash_available() -> bool:
    try:
        import dash  # noqa: F401
    except ImportError:
        return False
    return True


def create_app(results: list[str] | None = None):
    """The Dash app; ``results`` are paths of results files offered in the "Results file" tab.
    Raises ``ImportError`` with :data:`MISSING_DASH` when Dash is not installed."""
    if not dash_available():
        raise ImportError(MISSING_DASH)
    from interfaces.dashboard.app import build_app

    return build_app(results or [])


def run(host: str = "127.0.0.1", port: int = 8050, results: list[str] | None = None, debug: bool = False) -> None:
    """Serve the app until interrupted."""
    create_app(results).run(host=host, port=port, debug=debug)
