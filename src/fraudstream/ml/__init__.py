"""The model lifecycle: datasets, point-in-time training, evaluation, and the model registry."""

from collections.abc import Callable
from typing import TypeAlias

#: How long work says how far it is: ``progress(step, done, total)``, e.g. ("replaying features",
#: 120_000, 360_000); ``total`` is 0 for a step whose amount is not known. Called once per chunk of
#: rows (thousands), never per row, so it costs nothing next to the work; the command line draws it
#: as a progress bar, a notebook can print it or drive its own bar.
Progress: TypeAlias = Callable[[str, int, int], None]
