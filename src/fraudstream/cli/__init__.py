"""The `fraudstream` command: serve, demo, score files, rules, configuration, database, simulation.

One module per command group; `run` is the entry point.
"""

# Each command module adds its commands to `app` as it is imported, and `fraudstream --help` lists
# them in that order.
# isort: off
from fraudstream.cli import server, rules, config, db, score, keys  # noqa: F401
from fraudstream.cli import simulate, history, worker, models, topics, warmup  # noqa: F401
from fraudstream.cli import jobs  # noqa: F401

# isort: on
from fraudstream.cli.app import app, run

__all__ = ["app", "run"]
