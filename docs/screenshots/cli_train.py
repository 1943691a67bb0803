"""Draw docs/screenshots/cli-train.svg: the terminal while `fraudstream train` chooses LightGBM settings.

Runs the real command on simulated traffic and, when it is half-way through its search, draws what
its terminal shows (what it read, the steps done with their durations, the live bar) with Rich's SVG
export. Run it again after changing the command's output:

    .venv/bin/python docs/screenshots/cli_train.py
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from pathlib import Path

from rich.console import Console, Group, RenderableType
from rich.text import Text
from typer.testing import CliRunner

from fraudstream.cli import app
from fraudstream.cli.progress import Steps
from fraudstream.sim.generator import SimulationConfig, simulate, with_label_times
from fraudstream.sim.output import write_table

HERE = Path(__file__).resolve().parent
COMMAND = "fraudstream train --data sim.parquet --label-delay 3d"


def main() -> None:
    done: list[RenderableType] = []  # the lines of the steps finished before the frame
    frame: list[RenderableType] = []  # the live display at that moment
    report, finish = Steps.__call__, Steps._finish

    def step(self: Steps, name: str, amount: int = 0, total: int = 0) -> None:
        report(self, name, amount, total)
        if name == "choosing LightGBM settings" and amount == 3 and not frame:
            frame.append(self._display.get_renderable())

    def finished(self: Steps) -> None:
        if self._step is not None and not frame:
            done.append(Text.from_markup(self.finished_line()))
        finish(self)

    Steps.__call__ = step  # type: ignore[method-assign]
    Steps._finish = finished  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as folder, contextlib.chdir(folder):
        config = SimulationConfig(count=100_000, seed=7, duration_ms=14 * 86_400_000)
        write_table(with_label_times(simulate(config), config), Path(folder, "sim.parquet"))
        arguments = [*COMMAND.split()[1:], "--registry", str(Path(folder, "models"))]
        # Taken for a terminal, so that the live display is drawn (into the runner's capture).
        runner = CliRunner(env={"FRAUDSTREAM_DATA_DIR": folder, "TTY_COMPATIBLE": "1"})
        result = runner.invoke(app, arguments, catch_exceptions=False)
        if result.exit_code != 0 or not frame:
            raise SystemExit(f"train did not reach its search:\n{result.output}")
    read = [Text(line) for line in re.findall(r"sim\.parquet: [^\x1b\r\n]*", result.stderr)]
    terminal = Console(record=True, width=92, force_terminal=True, color_system="truecolor")
    terminal.print(Text(f"$ {COMMAND}", style="bold"))
    terminal.print(Group(*read, *done, *frame))
    terminal.save_svg(str(HERE / "cli-train.svg"), title=COMMAND)


if __name__ == "__main__":
    main()
