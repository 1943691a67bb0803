"""`python -m fraudstream` runs the command line."""

from fraudstream.cli import run

run()
