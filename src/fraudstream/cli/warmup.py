"""`fraudstream warmup`: compile the engine's kernels once, ahead of the first start."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from fraudstream.cli.app import app, console

#: What a first start says while it compiles, so that a silent minute is not taken for a hang.
COMPILING = "compiling the engine's kernels once (about a minute; later starts take seconds)"


@app.command()
def warmup(
    force: Annotated[bool, typer.Option("--force", help="Compile again, even if a warm-up has run.")] = False,
) -> None:
    """Compile the engine's numba kernels into the kernel cache (about a minute on a fresh install,
    seconds when they are there), so that `serve`, `demo` and `worker` start in seconds. `make demo`
    runs it; a start that finds no warm-up for this version runs it first itself.

    The cache is in FRAUDSTREAM_KERNEL_CACHE (default ~/.cache), in a folder named after the
    kernels' source: an upgrade compiles again.

    Example: `fraudstream warmup`
    """
    from fraudstream.warmup import is_warm, marker_path

    if is_warm() and not force:
        console.print(f"kernels already compiled ({marker_path().parent})", highlight=False)
        return
    started = time.perf_counter()
    _compile()
    console.print(
        f"kernels ready in {time.perf_counter() - started:.0f} s ({marker_path().parent})", highlight=False
    )


def warm_first() -> None:
    """Before a server, demo or worker starts: compile the kernels, saying so, unless a warm-up of this
    version's kernels has run (then loading them from the cache takes the start a second or two)."""
    from fraudstream.warmup import is_warm

    if not is_warm():
        console.print(f"[yellow]first start:[/yellow] {COMPILING}", highlight=False)
        try:
            _compile()
        except Exception as exc:  # the start goes on: each kernel then compiles at its first use
            console.print(
                f"[yellow]warning[/yellow] the warm-up failed ({exc!r}); kernels compile as they are "
                "first used, in the first requests",
                highlight=False,
            )


def _compile() -> None:
    from fraudstream.cli.progress import steps
    from fraudstream.warmup import STEPS, warm_kernels

    with steps() as shown:
        warm_kernels(lambda step: shown(f"compiling kernels ({STEPS.index(step) + 1}/{len(STEPS)}): {step}"))
