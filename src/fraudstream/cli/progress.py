"""Progress of long commands on stderr: the step a command is on, with a bar where the amount is known.

The library reports through a plain callback, ``progress(step, done, total)`` (total 0: an amount it
does not know), called once per chunk of rows; this module turns those calls into a Rich display.
In a terminal the display is live and disappears when the work ends; each finished step leaves one
line with its duration. Piped or redirected, only those lines are written: a log gets a few lines,
never a redrawn bar.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from fraudstream.cli.app import console

__all__ = ["Steps", "steps"]


class Steps:
    """The callback a command hands to library code: it shows the current step on the live
    ``display`` (None when stderr is not a terminal) and, when a step gives way to another, writes
    the finished one with how long it took."""

    def __init__(self, display: Progress | None) -> None:
        self._display = display
        self._task: TaskID | None = None
        self._step: str | None = None
        self._started = 0.0
        self._done = 0
        self._total = 0

    def __call__(self, step: str, done: int = 0, total: int = 0) -> None:
        same_step = step == self._step
        if not same_step:
            self._finish()
            self._step, self._started = step, time.perf_counter()
        self._done, self._total = done, total
        if self._display is not None:
            self._show(same_step, step, done, total)

    def _show(self, same_step: bool, step: str, done: int, total: int) -> None:
        assert self._display is not None
        count = f"{done:,}/{total:,}" if total else ""
        amount = total or None  # None: a pulsing bar, for an amount not known
        if self._task is None:
            self._task = self._display.add_task(escape(step), total=amount, completed=done, count=count)
        elif same_step:
            self._display.update(self._task, completed=done, total=amount, count=count)
        else:  # a new step: its own bar and clock (a finished bar would stay finished)
            self._display.reset(
                self._task, total=amount, completed=done, description=escape(step), count=count
            )

    def _finish(self) -> None:
        """Write the step that just ended, with its amount and duration."""
        if self._step is not None:
            console.print(self.finished_line(), highlight=False)

    def finished_line(self) -> str:
        """The line (Rich markup) that says the current step is done: its amount and duration."""
        seconds = time.perf_counter() - self._started
        amount = f" {self._done:,}/{self._total:,}" if self._total else ""
        return f"[green]✓[/green] {escape(self._step or '')}{amount} [dim]{seconds:.1f} s[/dim]"

    def close(self) -> None:
        self._finish()
        self._step = None


#: A library's progress callback: (step, done, total), total 0 when the amount is not known.
Report = Callable[[str, int, int], None]


@contextmanager
def steps(first: str | None = None) -> Iterator[Steps]:
    """A command's steps on stderr for the length of the ``with`` block, starting at ``first`` when
    given: live on a terminal, a line per finished step elsewhere. The last step's line is written
    when the block ends without an error (one that stops the command says why itself)."""
    if not console.is_terminal or console.is_dumb_terminal:
        shown = Steps(None)
        if first is not None:
            shown(first)
        yield shown
        shown.close()
        return
    display = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[count]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        refresh_per_second=8,
    )
    with display:
        shown = Steps(display)
        if first is not None:
            shown(first)
        yield shown
        shown.close()
