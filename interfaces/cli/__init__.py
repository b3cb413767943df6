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


class GenzGroup(click.Group):
    """A click group that turns ``ValueError`` from the engine into exit code 2."""

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


def _register_all() -> None:
    from genz.plugins import load_plugins

    try:
        load_plugins()  # users' policies, routers and device families, before options are built
    except ValueError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    from interfaces.cli import predict_cmds

    predict_cmds.register(main)
    for name in ("validation_cmds", "serving_cmds", "optimizer_cmds", "report_cmds"):
        try:
            module = __import__(f"interfaces.cli.{name}", fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != f"interfaces.cli.{name}":
                raise
            continue
        module.register(main)


_register_all()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
