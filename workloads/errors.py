"""Errors every package may raise and the command line maps to exit codes.

``ValueError`` means bad input (exit code 2, the message names the field and what is allowed);
:class:`MissingDependency` means an optional part is not installed (exit code 1, the message gives
the install line); :class:`RunFailed` means a well-formed run that could not finish (exit code 1).
"""


class MissingDependency(RuntimeError):
    """An optional package a feature needs is not installed; the message says how to install it."""


class RunFailed(RuntimeError):
    """A run with valid inputs that could not complete (a simulation that stalls, a solver failure)."""
