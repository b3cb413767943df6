"""Loading users' extensions: modules that register scheduling policies, routers, device families.

A plugin is an ordinary Python module whose import registers something
(:func:`genz.serving.registry.register_scheduler`, :func:`~genz.serving.registry.register_router`,
:func:`hwmodels.registry.register_family`). ``GENZ_PLUGINS`` lists plugins, comma-separated, each a
dotted module name (``mypkg.policies``) or a path to a ``.py`` file; installed packages may also
declare an entry point in the ``genz.plugins`` group. ``genz`` loads them before it builds its
command line, so a registered policy appears in ``genz simulate --help``, scenario files and
``genz tune --scheduler``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

__all__ = ["ENV_VAR", "GROUP", "any_plugins", "load_plugins"]

GROUP = "genz.plugins"

ENV_VAR = "GENZ_PLUGINS"
_loaded: dict[str, object] = {}


def _import(entry: str):
    if entry.endswith(".py"):
        path = Path(entry).expanduser()
        if not path.is_file():
            raise ValueError(f"{ENV_VAR}: plugin file {entry} does not exist")
        name = f"genz_plugin_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    return importlib.import_module(entry.split(":")[0])  # an entry point's "module:attr"


def _declared_anywhere() -> bool:
    """Whether any installed distribution on ``sys.path`` declares a ``genz.plugins`` entry point:
    a plain scan of the ``*.dist-info``/``*.egg-info`` folders' ``entry_points.txt`` (about 2 ms,
    where ``importlib.metadata`` takes 15-35 ms on every command's start). Assumption: no plugin is
    installed only inside a zipped egg (the exact lookup below would find it; this scan would not)."""
    tag = f"[{GROUP}]"
    for folder in sys.path:
        try:
            entries = os.scandir(folder or ".")
        except OSError:
            continue
        with entries:
            for e in entries:
                if not e.name.endswith((".dist-info", ".egg-info")):
                    continue
                try:
                    with open(os.path.join(e.path, "entry_points.txt"), encoding="utf-8", errors="replace") as fh:
                        if tag in fh.read():
                            return True
                except OSError:
                    continue
    return False


def _entry_points() -> list[str]:
    """Values (``module:attr``) of the ``genz.plugins`` entry points of installed packages."""
    if not _declared_anywhere():
        return []
    from importlib.metadata import entry_points

    return [ep.value for ep in entry_points(group=GROUP)]


def any_plugins() -> bool:
    """Whether ``GENZ_PLUGINS`` names plugins or an installed package declares one (cheap)."""
    return bool(os.environ.get(ENV_VAR, "").strip()) or _declared_anywhere()


def load_plugins(spec: str | None = None) -> list[str]:
    """Import the plugins named by ``spec`` (default: the ``GENZ_PLUGINS`` variable) and the
    ``genz.plugins`` entry points, once each; returns the names loaded. A plugin that fails to
    import raises ``ValueError`` naming it and the cause."""
    entries = [e.strip() for e in (os.environ.get(ENV_VAR, "") if spec is None else spec).split(",") if e.strip()]
    entries += _entry_points()
    for entry in entries:
        if entry in _loaded:
            continue
        import genz.serving  # noqa: F401  (the built-in policies register first)

        try:
            _loaded[entry] = _import(entry)
        except ValueError:
            raise
        except Exception as exc:  # any import error of a user's module is bad input, named
            raise ValueError(f"{ENV_VAR}: cannot load plugin {entry!r}: {type(exc).__name__}: {exc}") from None
    return list(_loaded)
