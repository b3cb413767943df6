"""How people meet the simulator: the ``genz`` command line, HTML reports and dashboards.

Interfaces hold no modelling logic; they call ``genz``, ``optimizers`` and ``validation``.
"""
