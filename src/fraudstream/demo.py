"""`fraudstream demo`: the server plus live simulated traffic, with a one-line summary in the terminal."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
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

__all__ = ["run_demo"]

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


def _train_demo_models(service: ScoringService) -> None:
    """A first model for a fresh demo: LightGBM as the champion, logistic regression scoring in shadow,
    both trained on a week of simulated labelled traffic (skipped when the registry has any model)."""
    import pyarrow.parquet as pq

    from fraudstream.ml.dataset import load_history
    from fraudstream.ml.registry import Registry
    from fraudstream.ml.train import replay_training_features, train_and_register

    registry = Registry(service.settings.models_dir, service.settings.s3_endpoint_url)
    if registry.versions() or service.settings.model_path is not None:
        return
    config = SimulationConfig(
        count=20_000,
        seed=DEMO_WORLD,
        users=_USERS,
        merchants=_MERCHANTS,
        fraud_rate=0.03,
        duration_ms=7 * 86_400_000,
    )
    path = service.settings.data_dir / "demo-training.parquet"
    pq.write_table(simulate(config), path)
    history = load_history(path)
    # Simulated labels are known at once here; live, they come from analysts' verdicts and chargebacks.
    features = replay_training_features(history, 0)
    champion, *_ = train_and_register(history, "lightgbm", registry, label_delay_ms=0, features=features)
    challenger, *_ = train_and_register(history, "logistic", registry, label_delay_ms=0, features=features)
    registry.promote(champion.metadata.version)
    registry.shadow(challenger.metadata.version)
    service.refresh_model()
    console.print(
        f"models trained on simulated history: champion {champion.metadata.version} "
        f"(ROC AUC {champion.metadata.metrics.get('roc_auc', 0):.3f}), "
        f"challenger {challenger.metadata.version} in shadow"
    )


async def _models(service: ScoringService, stop: asyncio.Event) -> None:
    while not service.ready and not stop.is_set():
        await asyncio.sleep(0.1)
    try:
        await _in_daemon_thread(_train_demo_models, service)
    except Exception as exc:  # the demo keeps serving on the rules alone
        console.print(f"[red]demo models not trained:[/red] {exc!r}")


async def _in_daemon_thread(function: Callable[[ScoringService], None], service: ScoringService) -> None:
    """``function(service)`` in a daemon thread, awaited. Not in the loop's executor: on Ctrl-C the
    executor is joined, and training takes tens of seconds, so the demo would not stop until it had
    finished; a daemon thread ends with the process (a model is registered whole or not at all)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def settle(error: BaseException | None) -> None:
        if done.done():  # cancelled: the demo is stopping
            return
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)

    def run() -> None:
        error: BaseException | None = None
        try:
            function(service)
        except BaseException as exc:  # handed to the awaiting task, which reports it
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
            loop.call_soon_threadsafe(settle, error)

    threading.Thread(target=run, name="fraudstream-demo-models", daemon=True).start()
    await done


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
                asyncio.create_task(_models(service, stop)),
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


def run_demo(settings: Settings, rate: float) -> None:
    ensure_port_free(settings.host, settings.port)
    check_storage(settings)
    configure_logging("console")
    console.print(
        "[yellow]demo mode:[/yellow] no API keys and a built-in card key; do not use for real payments"
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(settings, rate))
    console.print("stopped cleanly")
