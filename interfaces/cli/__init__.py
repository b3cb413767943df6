"""The ``genz`` command line.

Exit codes: 0 success, 1 a run that failed or is infeasible, or an optional part that is not
installed (the message gives the install line), 2 bad input (the message names the flag and the
allowed values; no traceback). Each command module defines ``register(main)``.
"""

from __future__ import annotations

import sys

import click

from interfaces.cli.common import BadInput
from workloads.errors import MissingDependency, RunFailed

#: command -> (module under interfaces.cli, attribute); a module is imported only when one of its
#: commands runs (or for ``genz --help``), so ``genz predict`` does not pay for the serving simulation
COMMANDS: dict[str, tuple[str, str]] = {
    "predict": ("predict_cmds", "predict"), "list": ("predict_cmds", "list_cmd"), "sweep": ("predict_cmds", "sweep"),
    "simulate": ("serving_cmds", "simulate"),
    "tune": ("optimizer_cmds", "tune"), "plan": ("optimizer_cmds", "plan"), "place": ("optimizer_cmds", "place"),
    "report": ("report_cmds", "report"), "dashboard": ("report_cmds", "dashboard"), "doctor": ("report_cmds", "doctor"),
    "recommend": ("recommend_cmds", "recommend"),
    "calibrate": ("validation_cmds", "calibrate"), "validate": ("validation_cmds", "validate"),
}


def _plugins() -> None:
    """Load users' plugins (GENZ_PLUGINS, genz.plugins entry points) before any command is built, so
    their policies, routers and device families appear in its options."""
    from genz.plugins import any_plugins, load_plugins

    if not any_plugins():
        return

    try:
        load_plugins()
    except ValueError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)


class GenzGroup(click.Group):
    """A click group that loads command modules on demand and turns ``ValueError`` from the engine
    into exit code 2."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, name: str):
        if name not in self.commands and name in COMMANDS:
            import importlib

            _plugins()
            module, attr = COMMANDS[name]
            self.add_command(getattr(importlib.import_module(f"interfaces.cli.{module}"), attr), name)
        return self.commands.get(name)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ValueError as exc:
            raise BadInput(str(exc)) from None
        except (MissingDependency, RunFailed) as exc:
            raise click.ClickException(str(exc)) from None  # exit 1: not the input's fault


@click.group(cls=GenzGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="genz-sim")
def main() -> None:
    """Hardware performance simulator for LLM inference.

    \b
    Examples:
      genz predict                                   # llama-3-8b on h200, batch 1
      genz predict --model llama-3-70b --hardware h100 --tp 4 --precision fp8 --json
      genz list models
      genz sweep --model llama-3-8b --hardware h100,h200 --batch 1:256:x2 --out sweep.csv
    """
