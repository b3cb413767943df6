"""``python -m interfaces.cli ...`` runs the ``genz`` command (handy in a source checkout)."""

from interfaces.cli import main

main()
