"""`fraudstream demo`: the server plus live simulated traffic, with a one-line summary in the terminal."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Callable

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import uvicorn
from fastapi import FastAPI
from rich.console import Console

from fraudstream.api import create_app
from fraudstream.api.app import ensure_port_free
from fraudstream.api.server import server_config
from fraudstream.config import Settings
from fraudstream.logs import configure_logging
from fraudstream.runtime.embedded import ScoringService
from fraudstream.runtime.embedded.service import check_storage
from fraudstream.sim.generator import SimulationConfig, simulate
from fraudstream.sim.output import records_for_http

__all__ = ["check_demo", "run_demo", "train_demo_models"]

console = Console(stderr=True)


async def _traffic(service: ScoringService, rate: float, stop: asyncio.Event) -> None:
    """Simulated traffic replayed at ``rate`` per second, its clock moved to now."""
    try:
        await _send_traffic(service, rate, stop)
    except Exception as exc:  # the demo keeps serving even if its traffic generator fails
        console.print(f"[red]simulated traffic stopped:[/red] {exc!r}")


#: The demo's simulated world: its people, their homes, cards and usual shops. Live traffic and the
#: history the first models are trained on come from this one world, so a demo restarted on its
#: saved state continues the same people's histories (a new world each run made half of a restarted
#: demo's traffic look like fraud: every user "moved" and "changed device" at once).
DEMO_WORLD = 5
#: Users and merchants of the demo world, and transactions per chunk of simulated live traffic.
_USERS, _MERCHANTS, _CHUNK = 1500, 50, 20_000


def traffic_config(seed: int, rate: float) -> SimulationConfig:
    """One chunk of live demo traffic: ``_CHUNK`` transactions of the demo world over
    ``_CHUNK / rate`` seconds; each ``seed`` gives other transactions of the same people."""
    return SimulationConfig(
        count=_CHUNK,
        seed=seed,
        population_seed=DEMO_WORLD,
        duration_ms=int(_CHUNK / rate * 1000),
        users=_USERS,
        merchants=_MERCHANTS,
        fraud_rate=0.02,
    )


def _chunk(config: SimulationConfig, prefix: str) -> tuple[npt.NDArray[np.int64], list[dict[str, object]]]:
    """A chunk's transactions as the API takes them (ids ``prefix-i``), with their simulated times."""
    table = simulate(config)
    ids = pa.array([f"{prefix}-{i}" for i in range(table.num_rows)])
    table = table.set_column(0, "transaction_id", ids).drop_columns(["is_fraud", "fraud_scenario"])
    times = table.column("timestamp").cast(pa.int64()).to_numpy().astype(np.int64)
    return times, records_for_http(table)


async def _send_traffic(service: ScoringService, rate: float, stop: asyncio.Event) -> None:
    """Chunk after chunk of simulated traffic (with no end), its clock moved to the wall clock."""
    run = secrets.token_hex(3)
    first_seed = secrets.randbelow(2**31)
    while not service.ready and not stop.is_set():
        await asyncio.sleep(0.1)
    started, now_ms = time.monotonic(), int(time.time() * 1000)
    chunk = 0
    while not stop.is_set():
        config = traffic_config(first_seed + chunk, rate)
        # Simulating a chunk takes a second or two: off the event loop, which serves requests meanwhile.
        times, records = await asyncio.to_thread(_chunk, config, f"demo-{run}-{chunk}")
        # The chunk's simulated time, from its start, measured on the wall clock since the demo began.
        times += chunk * config.duration_ms - config.start_ms
        position = 0
        while not stop.is_set() and position < len(records):
            elapsed_ms = (time.monotonic() - started) * 1000.0
            due = int(np.searchsorted(times, elapsed_ms, side="right"))
            batch = records[position:due]
            for record, t in zip(batch, times[position:due].tolist()):
                record["timestamp"] = (now_ms + t) / 1000.0
            if batch:
                await service.score(batch)
                position = due
            await asyncio.sleep(0.05)
        chunk += 1


#: A progress callback, ``progress(step, done, total)`` (total 0: an amount not known).
Progress = Callable[[str, int, int], None]


def train_demo_models(settings: Settings, progress: Progress | None = None) -> str | None:
    """The first models of a fresh demo, trained before it goes live so that its first decisions are
    the model's: LightGBM as the champion and logistic regression scoring in shadow, both on a week of
    the demo world's labelled traffic, with fixed settings (LightGBM's settings search would take a
    minute, and finds nothing better on the demo's clean data). Skipped when the registry has
    a model or a model file is pinned. Returns a line saying what was trained, or None."""
    from fraudstream.ml.registry import Registry

    registry = Registry(settings.models_dir, settings.s3_endpoint_url)
    if registry.versions() or settings.model_path is not None:
        return None

    def step(name: str) -> None:
        if progress is not None:
            progress(name, 0, 0)

    step("simulating a week of the demo world's payments")
    import pyarrow.parquet as pq

    from fraudstream.ml.dataset import load_history
    from fraudstream.ml.train import replay_training_features, train_and_register

    config = SimulationConfig(
        count=20_000,
        seed=DEMO_WORLD,
        users=_USERS,
        merchants=_MERCHANTS,
        fraud_rate=0.03,
        duration_ms=7 * 86_400_000,
    )
    path = settings.data_dir / "demo-training.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(simulate(config), path)
    history = load_history(path)
    # Simulated labels are known at once here; live, they come from analysts' verdicts and chargebacks.
    step("replaying their features")
    features = replay_training_features(history, 0)
    trained = []
    # C 0.1: the demo's classes are almost separable, and the default's weaker regularisation took
    # twice the iterations to converge to the same ranking.
    for kind, params in (("lightgbm", {}), ("logistic", {"C": 0.1})):
        step(f"training the {kind} model")
        model, *_ = train_and_register(
            history, kind, registry, label_delay_ms=0, features=features, params=params
        )
        trained.append(model.metadata)
    champion, challenger = trained
    registry.promote(champion.version)
    registry.shadow(challenger.version)
    return (
        f"models trained on a simulated week: champion {champion.version} "
        f"(ROC AUC {champion.metrics.get('roc_auc', 0):.3f} on the last day), "
        f"challenger {challenger.version} in shadow"
    )


async def _summary(service: ScoringService, url: str, stop: asyncio.Event) -> None:
    while not service.ready and not stop.is_set():
        await asyncio.sleep(0.1)
    console.print(
        f"[bold green]fraudstream demo is live:[/bold green] {url}  (API docs: {url}/docs; Ctrl-C to stop)"
    )
    while not stop.is_set():
        await asyncio.sleep(2)
        stats = await asyncio.to_thread(service.stats)
        latency = stats["live_latency_ms"]
        console.print(
            f"transactions {stats['transactions']:>7,}  alerts {stats['alerts']:>5,}  "
            f"decisions/s {stats['decisions_per_second']:>6}  p99 {latency['p99'] or 0:.1f} ms",
            highlight=False,
        )


async def _main(settings: Settings, rate: float) -> None:
    app = create_app(settings)
    service: ScoringService = app.state.service
    stop = asyncio.Event()
    url = f"http://{settings.host}:{settings.port}"
    service_lifespan = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan_with_traffic(app: FastAPI) -> AsyncIterator[None]:
        # The traffic lives inside the service's lifespan, so on Ctrl-C it stops before the service
        # drains and writes its final snapshot: nothing is scored after that snapshot.
        async with service_lifespan(app):
            helpers = [
                asyncio.create_task(_traffic(service, rate, stop)),
                asyncio.create_task(_summary(service, url, stop)),
            ]
            try:
                yield
            finally:
                stop.set()
                for task in helpers:
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.gather(*helpers)

    app.router.lifespan_context = lifespan_with_traffic
    server = uvicorn.Server(server_config(app, settings))
    await server.serve()


def check_demo(settings: Settings) -> None:
    """What must hold before the demo spends time compiling and training: its port is free and its
    data folder can be written (each stops it with one line otherwise)."""
    ensure_port_free(settings.host, settings.port)
    check_storage(settings)
    console.print(
        "[yellow]demo mode:[/yellow] no API keys and a built-in card key; do not use for real payments"
    )


def run_demo(settings: Settings, rate: float) -> None:
    """The server with simulated traffic until Ctrl-C (after `check_demo` and `train_demo_models`)."""
    configure_logging("console")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(settings, rate))
    console.print("stopped cleanly")
