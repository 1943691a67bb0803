"""The `fraudstream` command: serve, demo, score files, rules, configuration, database, simulation."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import pyarrow as pa
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fraudstream import __version__
from fraudstream.config import (
    BATCH_SIZE,
    CHECKPOINT_DIR,
    CHECKPOINT_INTERVAL_S,
    CONTROL_TOPIC,
    GROUP,
    LABELS_TOPIC,
    MAX_WAIT_S,
    TRANSACTIONS_TOPIC,
)

app = typer.Typer(
    name="fraudstream",
    help="Real-time transaction fraud detection.\n\nStart with `fraudstream demo`, then open http://127.0.0.1:8000",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
)
rules_app = typer.Typer(help="Validate and show rule sets.", no_args_is_help=True)
config_app = typer.Typer(help="Show the effective configuration.", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")

# Messages are never wrapped: an error is one line, whatever the terminal's width.
console = Console(stderr=True, soft_wrap=True)
out = Console()


def _version(value: bool) -> None:
    if value:
        out.print(f"fraudstream {__version__}")
        raise typer.Exit()


#: The exit status of a command stopped by an error of its user (a missing file, a bad setting, ...),
#: as for a usage error: the same 2 whether Typer or the command found it.
USER_ERROR = 2


def run() -> None:
    """The ``fraudstream`` command. A missing file, a bad rule set or setting, an unknown model version,
    a database it cannot open and the like end it with one line saying what is wrong (exit status 2)
    instead of a traceback; any other exception is a bug, and shows one."""
    try:
        app()
    except Exception as exc:
        message = _user_error(exc)
        if message is None:
            raise
        console.print(f"[red]error:[/red] {escape(message)}", highlight=False)
        raise SystemExit(USER_ERROR) from None


def _user_error(exc: Exception) -> str | None:
    """What to tell the user about an error they can fix; None for one that is a bug."""
    from pydantic import ValidationError as SettingsError

    from fraudstream.errors import FraudstreamError

    if isinstance(exc, FileNotFoundError) and not exc.strerror:  # raised with a path alone
        return f"no such file: {exc}"
    if isinstance(exc, FraudstreamError | OSError):
        return " ".join(str(exc).split())  # one line, whatever the message's own line breaks
    if isinstance(exc, SettingsError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    if "sqlalchemy" in sys.modules:
        from sqlalchemy.exc import ArgumentError, OperationalError

        if isinstance(exc, OperationalError):
            return (
                f"cannot use the database: {exc.orig} (check FRAUDSTREAM_DATABASE_URL, or "
                "FRAUDSTREAM_DATA_DIR for the default SQLite file)"
            )
        if isinstance(exc, ArgumentError):  # a URL it cannot parse, or of a database it does not know
            return (
                f"cannot use the database URL: {exc}; FRAUDSTREAM_DATABASE_URL is sqlite:///path or "
                "postgresql+psycopg://user@host/db"
            )
    if "confluent_kafka" in sys.modules:
        from confluent_kafka import KafkaException

        if isinstance(exc, KafkaException):
            return f"Kafka: {exc.args[0] if exc.args else exc} (check --brokers or FRAUDSTREAM_KAFKA_BROKERS)"
    return None


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Real-time transaction fraud detection."""


def _settings(*, store_only: bool = False, **overrides: Any) -> Any:
    """The effective settings, or exit with what is wrong with them. ``store_only``: for commands that
    use only the database and the model registry, which need no card key."""
    from pydantic import ValidationError as SettingsError

    from fraudstream.config import Settings, StoreSettings

    kind = StoreSettings if store_only else Settings
    try:
        return kind(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as exc:
        for error in exc.errors():
            console.print(
                f"[red]configuration error[/red] {'.'.join(map(str, error['loc']))}: {error['msg']}"
            )
        raise typer.Exit(2) from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    kafka: Annotated[
        str | None, typer.Option(help="Kafka mode: produce transactions to this broker; workers score them.")
    ] = None,
) -> None:
    """Run the API server (engine + SQLite under FRAUDSTREAM_DATA_DIR).

    Example: `FRAUDSTREAM_CARD_KEY=... fraudstream serve --port 8000`
    """
    import uvicorn

    from fraudstream.api.app import create_app, ensure_port_free
    from fraudstream.api.server import server_config
    from fraudstream.logs import configure_logging
    from fraudstream.runtime.embedded.service import check_storage

    settings = _settings(host=host, port=port, kafka_brokers=kafka)
    ensure_port_free(settings.host, settings.port)
    check_storage(settings)  # one line now, rather than a traceback from the app's start
    _champion_or_exit(settings)
    configure_logging(settings.log_format)
    uvicorn.Server(server_config(create_app(settings), settings)).run()


def _champion_or_exit(settings: Any) -> None:
    """Stop with one line when the champion cannot decide on this server (trained for another label
    delay or feature set), rather than with a traceback from the server's start."""
    from fraudstream.core.engine import Engine
    from fraudstream.errors import ModelError
    from fraudstream.runtime.embedded.service import load_champion

    try:
        Engine(settings.engine_config()).set_model(load_champion(settings))
    except ModelError as exc:
        console.print(f"[red]error:[/red] the champion cannot be served: {exc}")
        raise typer.Exit(2) from None


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    rate: Annotated[
        float,
        typer.Option(
            help="Simulated transactions per second. The demo world has 1,500 people: the faster the "
            "traffic, the more often each of them pays, and the more of it velocity rules flag "
            "(about 2% of decisions are alerts at 20/s, 8-10% at 50/s, ~40% at 200/s)."
        ),
    ] = 20.0,
    data_dir: Annotated[Path, typer.Option(help="Where the demo keeps its database.")] = Path("data/demo"),
) -> None:
    """Start the whole system with live simulated traffic and fraud scenarios.

    Example: `fraudstream demo --rate 30`, then open http://127.0.0.1:8000
    """
    from fraudstream.demo import run_demo

    settings = _settings(demo=True, port=port, data_dir=data_dir, snapshot_interval_s=10.0)
    run_demo(settings, rate)


def _read_records(path: str) -> list[Any] | pa.Table:
    if path == "-":
        text = sys.stdin.read()
        return _parse_json_text(text)
    file = Path(path)
    if file.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(file)
    if file.suffix == ".csv":
        import pyarrow.csv as pv

        return pv.read_csv(file)
    return _parse_json_text(file.read_text(encoding="utf-8"))


def _parse_json_text(text: str) -> list[Any]:
    stripped = text.strip()
    if stripped.startswith("["):
        loaded = json.loads(stripped)
        return loaded if isinstance(loaded, list) else [loaded]
    if stripped.startswith("{") and "\n" not in stripped:
        return [json.loads(stripped)]
    records = []
    for number, line in enumerate(stripped.splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                from fraudstream.errors import FieldError, ValidationError

                problem = f"is not JSON ({exc.msg} at column {exc.colno})"
                raise ValidationError(
                    [FieldError(f"line {number}", problem, "one JSON object", line)]
                ) from None
    return records


def _read_or_exit(source: str) -> list[Any] | pa.Table:
    """The records of ``source``; an unreadable file ends the command with what is wrong and exit code 2."""
    from fraudstream.errors import ValidationError

    try:
        return _read_records(source)
    except FileNotFoundError:
        problem = "does not exist"
    except (ValidationError, ValueError, pa.ArrowInvalid, UnicodeDecodeError) as exc:
        # json.JSONDecodeError is a ValueError; Arrow's CSV/Parquet errors are ArrowInvalid.
        problem = f"cannot be read: {exc}"
    console.print(
        f"[red]{source}[/red] {problem}; give a JSON list, JSON lines, CSV or Parquet file, or - for stdin"
    )
    raise typer.Exit(2)


def _zone_option(name: str | None) -> str | None:
    """--timezone: refused at once, naming the flag, when it is not a time zone."""
    from fraudstream.core.schema import time_zone
    from fraudstream.errors import ConfigError

    try:
        return None if name is None else time_zone(name)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from None


def _share_option(text: str) -> str:
    """--max-invalid: refused at once when it is not a share such as 1% or 0.01."""
    from fraudstream.errors import ConfigError
    from fraudstream.ml.dataset import parse_max_invalid

    try:
        parse_max_invalid(text)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from None
    return text


# The options of every command that reads transaction files.
_TimezoneOption = Annotated[
    str | None,
    typer.Option(
        callback=_zone_option,
        help="Zone of the times written without one, an IANA name such as UTC or Europe/Paris (times "
        "with a zone keep theirs). Without it, a file of such times is refused.",
    ),
]
_MaxInvalidOption = Annotated[
    str,
    typer.Option(
        callback=_share_option,
        help="Stop when more than this share of the rows is invalid (1% or 0.01); fewer are skipped.",
    ),
]


def _checked_or_exit(reading: Any, max_invalid: str) -> None:
    """Print what reading the rows found; exit 2 when too many are invalid, or none is valid."""
    from rich.markup import escape

    from fraudstream.ml.dataset import parse_max_invalid

    for line in reading.report():
        console.print(escape(line), highlight=False)
    refusal = reading.refusal(parse_max_invalid(max_invalid))
    if refusal is not None:
        console.print(f"[red]error:[/red] {escape(refusal)}", highlight=False)
        raise typer.Exit(2)


def _config_error_exit(exc: Exception) -> typer.Exit:
    """Print a problem with the input (naive times, a bad --map, ...); exit 2 to raise."""
    from rich.markup import escape

    console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
    return typer.Exit(2)


def _history_or_exit(data: Path, map_: str | None, timezone: str | None, max_invalid: str) -> Any:
    """The history in ``data``, with what reading it found printed; exit 2 if it cannot be used."""
    from fraudstream.errors import ConfigError
    from fraudstream.ml.dataset import parse_mapping, read_history

    try:
        history, reading = read_history(data, parse_mapping(map_), timezone=timezone)
    except ConfigError as exc:
        raise _config_error_exit(exc) from None
    _checked_or_exit(reading, max_invalid)
    return history


@app.command()
def score(
    source: Annotated[str, typer.Argument(help="JSON, JSONL, CSV or Parquet file, or - for stdin.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write decisions (.jsonl/.csv/.parquet).")
    ] = None,
    card_key: Annotated[
        str | None, typer.Option(envvar="FRAUDSTREAM_CARD_KEY", help="Card fingerprint key.")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="Model version, champion, latest, or none for the rules alone (default: the model the "
            "server decides with: FRAUDSTREAM_MODEL_PATH, else the registry's champion, if any)."
        ),
    ] = None,
    registry: Annotated[Path | None, typer.Option(help="Registry directory (default: data/models).")] = None,
    timezone: _TimezoneOption = None,
    max_invalid: _MaxInvalidOption = "1%",
) -> None:
    """Score transactions from a file with the engine, in file order (nothing is stored).

    Example: `fraudstream score transactions.jsonl -o decisions.parquet`
    """
    from fraudstream.config import DEMO_CARD_KEY
    from fraudstream.core.engine import Engine, EngineConfig
    from fraudstream.core.schema import Validator
    from fraudstream.errors import ConfigError
    from fraudstream.ml.dataset import validate_file
    from fraudstream.ml.registry import champion_model
    from fraudstream.ml.train import engine_config
    from fraudstream.reference import load_reference

    if output is not None and output.suffix not in (".jsonl", ".csv", ".parquet"):
        raise typer.BadParameter(f"{output}: write .jsonl, .csv or .parquet", param_hint="--output")
    config = EngineConfig()
    names = config.features.feature_names
    if model is None:
        settings = _settings(demo=True)
        models_dir = registry if registry is not None else settings.models_dir
        chosen = champion_model(settings.model_path if registry is None else None, models_dir, names)
    else:
        chosen = None if model == "none" else _registry(registry).load(model, names)
    console.print(f"deciding with {f'model {chosen.metadata.version}' if chosen else 'the rules alone'}")
    config = engine_config(_duration_ms(_model_delay(chosen, None)), config)
    validator = Validator(load_reference(), (card_key or DEMO_CARD_KEY).encode())
    data = _read_or_exit(source)
    now = int(time.time() * 1000)
    name = "stdin" if source == "-" else source
    try:
        result, reading = validate_file(validator, data, name, received_at_ms=now, timezone=timezone)
    except ConfigError as exc:
        raise _config_error_exit(exc) from None
    for error in result.errors[:20]:
        console.print(
            f"[yellow]row {error.index} skipped[/yellow]: " + "; ".join(e.message for e in error.errors)
        )
    _checked_or_exit(reading, max_invalid)
    engine = Engine(config, model=chosen)
    records: list[dict[str, Any]] = []
    for start in range(0, len(result.batch), 8192):
        records += engine.score(result.batch.slice(start, start + 8192)).to_records()
    if output is None:
        table = Table("transaction", "decision", "score", "reasons")
        for record in records[:200]:
            reasons = "; ".join(r["text"] for r in record["reasons"][:2])
            table.add_row(record["transaction_id"], record["decision"], str(record["score"]), reasons)
        out.print(table)
    else:
        _write(records, output)
        console.print(f"wrote {len(records)} decisions to {output}")
    console.print(f"{len(records)} scored, {len(result.errors)} invalid")


def _write(records: list[dict[str, Any]], path: Path) -> None:
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        return
    flat = [
        {
            **r,
            "reasons": json.dumps(r["reasons"]),
            "rules": ",".join(r["rules"]),
            "shadow_rules": ",".join(r["shadow_rules"]),
        }
        for r in records
    ]
    table = pa.Table.from_pylist(flat)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, path)
    else:
        import pyarrow.csv as pv

        pv.write_csv(table, path)


@rules_app.command("validate")
def rules_validate(path: Annotated[Path, typer.Argument(help="YAML rule set.")]) -> None:
    """Check a rule set; on error, print the rule, the column and the reason.

    Example: `fraudstream rules validate my-rules.yaml`
    """
    from fraudstream.core.engine import default_names
    from fraudstream.core.features import FeatureConfig
    from fraudstream.core.rules import load_ruleset
    from fraudstream.errors import RuleError

    try:
        rules = load_ruleset(path.read_text(encoding="utf-8"), default_names(FeatureConfig()))
    except RuleError as exc:
        console.print(f"[red]invalid[/red] {exc}")
        raise typer.Exit(1) from None
    out.print(f"valid: version {rules.version}, {len(rules.rules)} rules, {len(rules.lists)} lists")


@rules_app.command("show")
def rules_show(
    path: Annotated[Path | None, typer.Argument(help="YAML rule set (default: the built-in).")] = None,
    yaml_: Annotated[
        bool,
        typer.Option(
            "--yaml", help="Print the rule set as YAML: a start for your own (edit, validate, backtest)."
        ),
    ] = False,
) -> None:
    """List the rules of a rule set (the built-in default when no file is given).

    Example: `fraudstream rules show --yaml > candidate.yaml`, then edit it and
    `fraudstream backtest --rules candidate.yaml --data sim.parquet`
    """
    from importlib import resources

    from fraudstream.core.engine import default_names
    from fraudstream.core.features import FeatureConfig
    from fraudstream.core.rules import load_ruleset

    config = FeatureConfig()
    text = (
        path.read_text(encoding="utf-8")
        if path
        else resources.files("fraudstream.core.rules").joinpath("default.yaml").read_text(encoding="utf-8")
    )
    rules = load_ruleset(text, default_names(config))
    if yaml_:
        typer.echo(text, nl=not text.endswith("\n"))
        return
    table = Table(
        "code", "action", "weight", "expression", "flags", title=f"rule set version {rules.version}"
    )
    for rule in rules.rules:
        flags = ", ".join(f for f, on in (("shadow", rule.shadow), ("disabled", not rule.enabled)) if on)
        table.add_row(rule.code, rule.action, f"{rule.weight:g}", rule.expression, flags)
    out.print(table)


@config_app.command("show")
def config_show() -> None:
    """Print the effective configuration, secrets masked.

    Example: `FRAUDSTREAM_PORT=9000 fraudstream config show`
    """
    settings = _settings()
    out.print_json(json.dumps(settings.masked(), default=str))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database to the newest schema version.

    Example: `FRAUDSTREAM_DATABASE_URL=postgresql+psycopg://user@host/db fraudstream db upgrade`
    """
    from fraudstream.storage import Store

    settings = _settings(store_only=True)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    Store(settings.effective_database_url).upgrade()
    out.print(f"database at the newest schema: {settings.masked()['database_url']}")


keys_app = typer.Typer(help="API keys for clients and dashboard users.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Who or what the key is for, e.g. an analyst's name.")],
    role: Annotated[str, typer.Option(help="admin, analyst, ingest or viewer.")] = "analyst",
) -> None:
    """Create an API key and print it once (only its hash is stored).

    Example: `fraudstream keys create alice --role analyst`
    """
    import time as clock

    from fraudstream.storage import Store
    from fraudstream.storage.store import ROLES

    if role not in ROLES:
        raise typer.BadParameter(f"{role!r} is not a role; allowed: {', '.join(ROLES)}", param_hint="--role")
    settings = _settings(store_only=True)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.effective_database_url)
    store.upgrade()
    key = store.create_api_key(name, role, int(clock.time() * 1000))
    out.print(f"API key for {name} ({role}); shown only now, keep it secret:")
    print(key)


@keys_app.command("list")
def keys_list() -> None:
    """List who holds an API key: name, role, when created, whether revoked (never the key itself).

    Example: `fraudstream keys list`
    """
    from datetime import UTC, datetime

    from fraudstream.storage import Store

    settings = _settings(store_only=True)
    store = Store(settings.effective_database_url)
    store.upgrade()
    table = Table("name", "role", "created (UTC)", "revoked", title="API keys")
    for key in store.list_api_keys():
        created = datetime.fromtimestamp(key["created_at_ms"] / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(key["name"], key["role"], created, "revoked" if key["revoked"] else "")
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    name: Annotated[str, typer.Argument(help="The holder whose keys stop working (see `keys list`).")],
) -> None:
    """Revoke every valid API key of NAME. A running server refuses them within 30 s (at once when
    revoked through DELETE /v1/keys/NAME).

    Example: `fraudstream keys revoke alice`
    """
    from fraudstream.storage import Store

    settings = _settings(store_only=True)
    store = Store(settings.effective_database_url)
    store.upgrade()
    revoked = store.revoke_api_keys(name)
    if revoked == 0:
        console.print(f"[red]no valid API key named {name!r}[/red]; `fraudstream keys list` shows them")
        raise typer.Exit(USER_ERROR)
    out.print(f"revoked {revoked} API key{'s' if revoked > 1 else ''} of {name}")


@app.command()
def simulate(
    count: Annotated[int, typer.Option(help="How many transactions.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Same seed, same traffic.")] = 7,
    fraud_rate: Annotated[float, typer.Option(help="Share of fraudulent transactions.")] = 0.01,
    days: Annotated[float, typer.Option(help="Time span of the traffic, in days.")] = 7.0,
    duration: Annotated[
        str | None, typer.Option(help="Time span as a duration (30m, 12h, 7d); wins over --days.")
    ] = None,
    to: Annotated[
        str,
        typer.Option(help="Output: a .parquet/.csv/.jsonl file, http://host:port or kafka://host:port/topic"),
    ] = "sim.parquet",
    labels: Annotated[
        Path | None,
        typer.Option(help="Also write label events (reported frauds, when reported) to this file."),
    ] = None,
    rate: Annotated[
        float, typer.Option(help="With --to http: transactions per second (0 = as fast as possible).")
    ] = 0,
    test: Annotated[
        str | None,
        typer.Option(help="Send a test scenario to --to (a URL): large, rapid, location, random or all."),
    ] = None,
    delay: Annotated[float, typer.Option(help="With --test random: seconds between transactions.")] = 1.0,
    health: Annotated[bool, typer.Option(help="With --test: check the server's health first.")] = False,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="FRAUDSTREAM_API_KEY",
            help="With --to http: the API key to send as X-API-Key (a server outside demo mode requires "
            "one with the ingest, analyst or admin role).",
        ),
    ] = None,
) -> None:
    """Generate labelled traffic with fraud scenarios, to a file or a running server.

    A file also gets label_time: when each fraud was reported (days to weeks later; empty if never).

    Example: `fraudstream simulate --count 100000 --to sim.parquet --labels labels.parquet`

    Test client: `fraudstream simulate --test all --to http://127.0.0.1:8000 --health` sends the large,
    rapid and location scenarios (and --count random ones) and exits 1 if an expected alert is missing
    or the server refused a request (each refusal is printed with its status and the server's words).
    """
    if test is not None:
        from fraudstream.sim.testclient import SCENARIO_TESTS, run_tests

        url = to if to.startswith("http") else "http://127.0.0.1:8000"
        chosen = [*SCENARIO_TESTS, "random"] if test == "all" else [test]
        if not set(chosen) <= {*SCENARIO_TESTS, "random"}:
            console.print(f"[red]--test {test}[/red]: choose large, rapid, location, random or all")
            raise typer.Exit(2)
        random_count = count if count != 10_000 else 10
        pause = delay if test == "random" else 0.0
        passed = run_tests(url, chosen, random_count, pause, health, out.print, api_key=api_key)
        raise typer.Exit(0 if passed else 1)
    from fraudstream.sim.generator import SimulationConfig, labels_for, with_label_times
    from fraudstream.sim.generator import simulate as generate
    from fraudstream.sim.output import OUTPUT_FORMATS, writable, write_table

    for name, target in (("--to", to), ("--labels", labels)):
        is_file = target is not None and not str(target).startswith(("http://", "https://", "kafka://"))
        if is_file and not writable(Path(str(target))):
            raise typer.BadParameter(f"{target}: {OUTPUT_FORMATS}", param_hint=name)
    span = _duration_ms(duration) if duration else int(days * 86_400_000)
    config = SimulationConfig(count=count, seed=seed, fraud_rate=fraud_rate, duration_ms=span)
    table = generate(config)
    if to.startswith(("http://", "https://")):
        sent = _send_or_exit(table.drop_columns(["is_fraud", "fraud_scenario"]), to, rate, api_key)
        console.print(f"sent {sent} transactions to {to}")
    elif to.startswith("kafka://"):
        from fraudstream.sim.output import send_kafka

        sent = send_kafka(table.drop_columns(["is_fraud", "fraud_scenario"]), to)
        console.print(f"produced {sent} transactions to {to}")
    else:
        write_table(with_label_times(table, config), Path(to))
        console.print(f"wrote {table.num_rows} transactions to {to}")
    if labels is not None:
        write_table(labels_for(table, config), labels)
        console.print(f"wrote label events to {labels}")


def _send_or_exit(table: pa.Table, url: str, rate: float, api_key: str | None) -> int:
    """``send_http``, or one line saying which status and words the server refused a batch with."""
    import httpx

    from fraudstream.sim.output import send_http
    from fraudstream.sim.testclient import error_detail

    try:
        return send_http(table, url, rate, api_key=api_key)
    except httpx.HTTPStatusError as exc:
        status = exc.response.status_code
        console.print(f"[red]{url} refused a batch with {status}[/red]: {error_detail(exc.response)}")
        raise typer.Exit(1) from None


models_app = typer.Typer(help="The model registry: list, show, promote, shadow.", no_args_is_help=True)
app.add_typer(models_app, name="models")

_DURATION_HELP = "a duration such as 7d, 12h or 0s"
#: One setting for the server, the workers and every command that replays history: label-feedback
#: windows end this far back, and a model only serves where the engine counts labels as it learned.
_LABEL_DELAY = typer.Option(
    envvar="FRAUDSTREAM_LABEL_DELAY",
    help="How long after a transaction its fraud label is known (a file's label_time column wins for "
    f"when each label arrives): {_DURATION_HELP}. Label-feedback windows end this far back; serve "
    "a model with the same FRAUDSTREAM_LABEL_DELAY it was trained with.",
)


_MODEL_LABEL_DELAY = typer.Option(
    envvar="FRAUDSTREAM_LABEL_DELAY",
    help="How long after a transaction its fraud label is known (a file's label_time column wins): "
    f"{_DURATION_HELP}. Default: the delay the model was trained with (0s for rules alone).",
)


def _duration_ms(text: str) -> int:
    from fraudstream.core.features import parse_delay_ms

    return parse_delay_ms(text)


def _model_delay(model: Any, given: str | None) -> str:
    """The label delay to replay with: the one given, else the one ``model`` was trained with (its
    label windows mean that delay), else none."""
    if given is not None:
        return given
    return str(model.metadata.params.get("label_delay", "0s")) if model is not None else "0s"


def _time_ms(text: str | None) -> int | None:
    from datetime import datetime

    return None if text is None else int(datetime.fromisoformat(text).timestamp() * 1000)


def _registry(path: Path | None) -> Any:
    from fraudstream.ml.registry import Registry

    if path is not None:
        return Registry(path)
    from fraudstream.config import Settings

    return Registry(Settings(demo=True).models_dir)


@app.command()
def train(
    data: Annotated[Path, typer.Option(help="History as CSV or Parquet, with an is_fraud column.")],
    model: Annotated[
        str, typer.Option(help="lightgbm, isolation_forest, random_forest or logistic.")
    ] = "lightgbm",
    train_from: Annotated[
        str | None, typer.Option(help="First transaction time to train on (RFC 3339).")
    ] = None,
    train_to: Annotated[
        str | None, typer.Option(help="End of the training window; later rows are the holdout.")
    ] = None,
    label_delay: Annotated[str, _LABEL_DELAY] = "0s",
    map_: Annotated[
        str | None, typer.Option("--map", help="Column mapping: user_id=CUSTOMER_ID,amount=TX_AMOUNT")
    ] = None,
    registry: Annotated[Path | None, typer.Option(help="Registry directory (default: data/models).")] = None,
    promote: Annotated[bool, typer.Option(help="Make the new model the champion.")] = False,
    timezone: _TimezoneOption = None,
    max_invalid: _MaxInvalidOption = "1%",
) -> None:
    """Train a model on history replayed through the engine, evaluate it on the holdout, register it.

    Example, on the week `fraudstream simulate` writes by default (from 2026-01-01):
    `fraudstream train --data sim.parquet --train-to 2026-01-06T00:00:00+00:00 --label-delay 1d --promote`
    """
    from fraudstream.errors import FraudstreamError
    from fraudstream.ml.train import train_and_register

    try:
        history = _history_or_exit(data, map_, timezone, max_invalid)
        delay = _duration_ms(label_delay)
        console.print(f"replaying {len(history.batch):,} transactions through the engine ...")
        store = _registry(registry)
        # Training replays only the feature state (what the model learns from), not whole decisions.
        trained, summary, report, path = train_and_register(
            history,
            model,
            store,
            label_delay_ms=delay,
            train_from_ms=_time_ms(train_from),
            train_to_ms=_time_ms(train_to),
        )
    except (OSError, ValueError, FraudstreamError) as exc:
        console.print(f"[red]cannot train:[/red] {exc}")
        raise typer.Exit(2) from None
    missed, known = summary["frauds_not_yet_reported"], summary["training_frauds"]
    if missed > known:
        console.print(
            f"[yellow]warning:[/] {missed:,} of the {missed + known:,} frauds among the training rows "
            "were not reported by the end of the window (their label_time is later or empty), so the "
            "model learnt them as legitimate. A longer label delay (--label-delay or "
            f"FRAUDSTREAM_LABEL_DELAY, now {label_delay}) trains on older rows whose labels are in."
        )
    _print_evaluation(report)
    headline = {k: v for k, v in report.items() if k != "threshold_table"}
    out.print_json(
        json.dumps({"version": trained.metadata.version, "path": str(path), **summary, **headline})
    )
    if promote:
        store.promote(trained.metadata.version)
        console.print(f"{trained.metadata.version} is now the champion")


@app.command()
def evaluate(
    data: Annotated[Path, typer.Option(help="History as CSV or Parquet, with an is_fraud column.")],
    model: Annotated[
        str, typer.Option(help="Version id, champion, latest, or rules (rules only).")
    ] = "champion",
    from_: Annotated[
        str | None, typer.Option("--from", help="Start of the evaluation window (RFC 3339).")
    ] = None,
    to: Annotated[str | None, typer.Option(help="End of the evaluation window (RFC 3339).")] = None,
    label_delay: Annotated[str | None, _MODEL_LABEL_DELAY] = None,
    map_: Annotated[str | None, typer.Option("--map", help="Column mapping: user_id=CUSTOMER_ID,...")] = None,
    registry: Annotated[Path | None, typer.Option(help="Registry directory (default: data/models).")] = None,
    output: Annotated[
        Path | None, typer.Option(help="Write one row per evaluated transaction (.parquet).")
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Write report.json and report.html with charts here.")
    ] = None,
    timezone: _TimezoneOption = None,
    max_invalid: _MaxInvalidOption = "1%",
) -> None:
    """Replay a history file through the engine and report fraud metrics on a time window.

    Example: `fraudstream evaluate --data sim.parquet --model champion --from 2026-01-05T00:00:00+00:00`
    """
    from fraudstream.core.engine import EngineConfig
    from fraudstream.ml.train import evaluate as measure

    history = _history_or_exit(data, map_, timezone, max_invalid)
    chosen = (
        None if model == "rules" else _registry(registry).load(model, EngineConfig().features.feature_names)
    )
    label_delay = _model_delay(chosen, label_delay)
    metrics, replayed, rows = measure(
        history, chosen, from_ms=_time_ms(from_), to_ms=_time_ms(to), label_delay_ms=_duration_ms(label_delay)
    )
    _print_evaluation(metrics)
    out.print_json(json.dumps(metrics))
    if report is not None:
        from fraudstream.core.policy import REVIEW
        from fraudstream.ml.report import write_report

        probability = replayed.probability[rows] if chosen is not None else replayed.score[rows] / 100.0
        flagged = replayed.decision[rows] >= REVIEW
        day = history.batch.timestamp_ms[rows] // 86_400_000
        paths = write_report(metrics, history.is_fraud[rows], probability, flagged, day, report)
        console.print(f"wrote {paths[0]} and {paths[1]}")
    if output is not None:
        import pyarrow.parquet as pq

        from fraudstream.core.policy import DECISIONS

        pq.write_table(
            pa.table(
                {
                    "transaction_id": history.batch.transaction_id.filter(pa.array(rows)),
                    "probability": replayed.probability[rows],
                    "score": replayed.score[rows],
                    "decision": [DECISIONS[c] for c in replayed.decision[rows].tolist()],
                    "rules": [",".join(r) for r, keep in zip(replayed.rules, rows.tolist()) if keep],
                    "reasons": [r for r, keep in zip(replayed.reasons, rows.tolist()) if keep],
                    "is_fraud": history.is_fraud[rows],
                }
            ),
            output,
        )
        console.print(f"wrote {int(rows.sum())} scored transactions to {output}")


def _print_evaluation(metrics: dict[str, Any]) -> None:
    """What an evaluation shows and its threshold table, for a person (stderr; the JSON goes to stdout)."""
    console.print(
        f"model [bold]{metrics['model']}[/] on data {metrics['data']}, "
        f"{metrics['transactions']:,} transactions ({metrics['frauds']:,} frauds) "
        f"from {metrics['window_from']} to {metrics['window_to']}, "
        f"label delay {metrics['label_delay']}: ROC AUC {metrics['roc_auc']}, "
        f"average precision {metrics['average_precision']}"
    )
    table = Table(
        "score ≥",
        "flagged",
        "share",
        "per day",
        "frauds",
        "precision",
        "recall",
        "fraud amount",
        title="Choosing a threshold: what flagging at or above each score catches",
    )
    for row in metrics["threshold_table"]:
        table.add_row(
            f"{row['threshold']:g}",
            f"{row['flagged']:,}",
            f"{row['review_rate']:.2%}",
            f"{row['flagged_per_day']:,.1f}",
            f"{row['frauds_caught']:,}",
            f"{row['precision']:.3f}",
            f"{row['recall']:.3f}",
            f"{row['fraud_amount_caught_share']:.1%}",
        )
    console.print(table)


@models_app.command("list")
def models_list(registry: Annotated[Path | None, typer.Option(help="Registry directory.")] = None) -> None:
    """Every registered model with its role and headline metrics.

    Example: `fraudstream models list`
    """
    store = _registry(registry)
    roles = store.roles()
    table = Table("version", "kind", "role", "AUC", "avg precision", "created")
    for meta in store.versions():
        table.add_row(
            meta.version,
            meta.kind,
            store.role_in(roles, meta.version) or "",
            str(meta.metrics.get("roc_auc", "")),
            str(meta.metrics.get("average_precision", "")),
            meta.created,
        )
    out.print(table)


@models_app.command("show")
def models_show(
    model: Annotated[str, typer.Argument(help="Version id, champion or latest.")] = "champion",
    registry: Annotated[Path | None, typer.Option(help="Registry directory.")] = None,
) -> None:
    """A model's card: kind, training data, metrics.

    Example: `fraudstream models show latest`
    """
    store = _registry(registry)
    out.print((store.root / store.resolve(model) / "card.md").read_text())


@models_app.command("promote")
def models_promote(
    model: Annotated[str, typer.Argument(help="Version id or latest.")],
    registry: Annotated[Path | None, typer.Option(help="Registry directory.")] = None,
) -> None:
    """Make a model the champion; a running server picks it up within a snapshot interval.

    Example: `fraudstream models promote latest`
    """
    out.print(f"champion: {_registry(registry).promote(model)}")


@models_app.command("shadow")
def models_shadow(
    model: Annotated[str, typer.Argument(help="Version id or latest.")],
    registry: Annotated[Path | None, typer.Option(help="Registry directory.")] = None,
) -> None:
    """Score a model in shadow next to the champion (recorded, never acting).

    Example: `fraudstream models shadow latest`
    """
    out.print(f"challenger: {_registry(registry).shadow(model)}")


@app.command()
def backtest(
    rules: Annotated[Path, typer.Option(help="Candidate rule set (YAML).")],
    data: Annotated[Path, typer.Option(help="History as CSV or Parquet, with an is_fraud column.")],
    current: Annotated[
        Path | None, typer.Option(help="Rule set to compare with (default: the built-in).")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Model version, champion or latest (default: rules only).")
    ] = None,
    from_: Annotated[
        str | None, typer.Option("--from", help="Count results from this time on (RFC 3339).")
    ] = None,
    label_delay: Annotated[str | None, _MODEL_LABEL_DELAY] = None,
    map_: Annotated[str | None, typer.Option("--map", help="Column mapping: user_id=CUSTOMER_ID,...")] = None,
    registry: Annotated[Path | None, typer.Option(help="Registry directory (default: data/models).")] = None,
    timezone: _TimezoneOption = None,
    max_invalid: _MaxInvalidOption = "1%",
) -> None:
    """Replay history with a candidate rule set and compare it, rule by rule, with the current one.

    Example: `fraudstream backtest --rules candidate.yaml --data sim.parquet`
    """
    from fraudstream.core.engine import EngineConfig, default_names, default_ruleset
    from fraudstream.core.rules import load_ruleset
    from fraudstream.ml.backtest import backtest as run

    config = EngineConfig()
    names = default_names(config.features)
    candidate = load_ruleset(rules.read_text(encoding="utf-8"), names)
    baseline = load_ruleset(current.read_text(encoding="utf-8"), names) if current else default_ruleset()
    history = _history_or_exit(data, map_, timezone, max_invalid)
    chosen = None if model is None else _registry(registry).load(model, config.features.feature_names)
    delay, start = _duration_ms(_model_delay(chosen, label_delay)), _time_ms(from_)
    results = {
        "current": run(history, baseline, model=chosen, label_delay_ms=delay, from_ms=start),
        "candidate": run(history, candidate, model=chosen, label_delay_ms=delay, from_ms=start),
    }
    table = Table("policy", "current", "candidate", title="the policy as a whole")
    for metric in (
        "recall_at_threshold",
        "precision_at_threshold",
        "legit_flagged_share",
        "fraud_amount_caught_share",
        "reviews_per_day",
    ):
        table.add_row(
            metric, str(results["current"]["policy"][metric]), str(results["candidate"]["policy"][metric])
        )
    out.print(table)
    per_rule = Table(
        "rule", "hits", "precision", "recall", "fraud money", "alerts/day", title="candidate rules"
    )
    for code, row in results["candidate"]["rules"].items():
        name = f"{code} (shadow)" if row["shadow"] else code
        per_rule.add_row(
            name,
            str(row["hits"]),
            str(row["precision"]),
            str(row["recall"]),
            f"{row['fraud_amount_caught']:,.2f}",
            str(row["alerts_per_day"]),
        )
    out.print(per_rule)


topics_app = typer.Typer(help="Kafka topics.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")


@topics_app.command("create")
def topics_create(
    brokers: Annotated[str, typer.Option(envvar="FRAUDSTREAM_KAFKA_BROKERS", help="host:port of a broker.")],
    partitions: Annotated[
        int, typer.Option(help="Partitions of the transactions topic (= most workers).")
    ] = 8,
) -> None:
    """Create the topics fraudstream uses (existing ones are left alone).

    Example: `fraudstream topics create --brokers localhost:9092 --partitions 12`
    """
    from fraudstream.runtime.kafka.topics import create_topics

    created = create_topics(brokers, partitions)
    out.print(f"created: {', '.join(created) or 'nothing (all exist)'}")


@app.command()
def worker(
    brokers: Annotated[
        str | None, typer.Option(help="host:port of a broker (FRAUDSTREAM_KAFKA_BROKERS).")
    ] = None,
    group: Annotated[
        str | None, typer.Option(help=f"Consumer group (FRAUDSTREAM_KAFKA_GROUP; default {GROUP}).")
    ] = None,
    topic: Annotated[
        str | None,
        typer.Option(help=f"Input topic (FRAUDSTREAM_KAFKA_TOPIC; default {TRANSACTIONS_TOPIC})."),
    ] = None,
    labels_topic: Annotated[
        str | None,
        typer.Option(
            help="Topic of fraud labels {transaction_id, is_fraud, label_time?}; '' for none "
            f"(FRAUDSTREAM_KAFKA_LABELS_TOPIC; default {LABELS_TOPIC})."
        ),
    ] = None,
    control_topic: Annotated[
        str | None,
        typer.Option(
            help="Topic where the API announces rule sets and lists changed in it; '' for none "
            f"(FRAUDSTREAM_KAFKA_CONTROL_TOPIC; default {CONTROL_TOPIC})."
        ),
    ] = None,
    checkpoint_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where partition checkpoints are kept "
            f"(FRAUDSTREAM_CHECKPOINT_DIR; default {CHECKPOINT_DIR})."
        ),
    ] = None,
    checkpoints: Annotated[
        str | None,
        typer.Option(
            "--checkpoints",
            help="Checkpoint store by URL, instead of --checkpoint-dir: a directory, file://..., "
            "postgresql+psycopg://user@host/db or s3://bucket/prefix (FRAUDSTREAM_CHECKPOINT_URL).",
        ),
    ] = None,
    s3_endpoint_url: Annotated[
        str | None,
        typer.Option(
            help="S3-compatible endpoint (MinIO, ...) for s3:// URLs (FRAUDSTREAM_S3_ENDPOINT_URL)."
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            help=f"Most messages scored together (FRAUDSTREAM_WORKER_BATCH_SIZE; default {BATCH_SIZE})."
        ),
    ] = None,
    max_wait: Annotated[
        float | None,
        typer.Option(
            help=f"Longest wait for a batch, seconds (FRAUDSTREAM_WORKER_MAX_WAIT_S; default {MAX_WAIT_S:g})."
        ),
    ] = None,
    checkpoint_interval: Annotated[
        float | None,
        typer.Option(
            help="Seconds between checkpoints "
            f"(FRAUDSTREAM_CHECKPOINT_INTERVAL_S; default {CHECKPOINT_INTERVAL_S:g})."
        ),
    ] = None,
    card_key: Annotated[str | None, typer.Option(help="Card fingerprint key (FRAUDSTREAM_CARD_KEY).")] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Serve /metrics and /healthz on this port (FRAUDSTREAM_WORKER_METRICS_PORT)."),
    ] = None,
    transactional_id: Annotated[
        str | None,
        typer.Option(
            help="Produce outputs in Kafka transactions under this id, one per worker and the same "
            "across its restarts: read_committed readers then see each decision once "
            "(FRAUDSTREAM_KAFKA_TRANSACTIONAL_ID).",
        ),
    ] = None,
    models_dir: Annotated[
        Path | None,
        typer.Option(
            help="Model registry whose champion decides, picked up again within 30 s of a promotion "
            "(FRAUDSTREAM_REGISTRY_DIR; default: FRAUDSTREAM_DATA_DIR/models, as the API keeps it).",
        ),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(help="Decide with this model artifact directory instead (FRAUDSTREAM_MODEL_PATH)."),
    ] = None,
    rules: Annotated[
        Path | None,
        typer.Option(help="YAML rule set to decide with (FRAUDSTREAM_RULES_PATH; default: built-in)."),
    ] = None,
) -> None:
    """Join a consumer group and score its partitions of the transactions topic.

    Every option is a setting of `fraudstream config show` too, read from its FRAUDSTREAM_ variable
    when not given, as the API reads it: both fingerprint cards, name topics and decide alike.

    Example: `fraudstream worker --brokers localhost:9092 --group fraud-eu`
    (add `--checkpoints postgresql+psycopg://fraud@db/fraud` or `--checkpoints s3://bucket/ckpt` when
    workers run on several machines)
    """
    from fraudstream.errors import FraudstreamError
    from fraudstream.logs import configure_logging
    from fraudstream.runtime.kafka.worker import Worker
    from fraudstream.runtime.kafka.worker_settings import worker_config

    settings = _settings(
        kafka_brokers=brokers,
        kafka_group=group,
        kafka_topic=topic,
        kafka_labels_topic=labels_topic,
        kafka_control_topic=control_topic,
        checkpoint_dir=checkpoint_dir,
        checkpoint_url=checkpoints,
        s3_endpoint_url=s3_endpoint_url,
        worker_batch_size=batch_size,
        worker_max_wait_s=max_wait,
        checkpoint_interval_s=checkpoint_interval,
        card_key=card_key or None,
        worker_metrics_port=metrics_port,
        kafka_transactional_id=transactional_id or None,
        registry_dir=models_dir,
        model_path=model,
        rules_path=rules,
    )
    config = worker_config(settings)
    configure_logging("auto")
    import signal

    try:
        member = Worker(config, settings.engine_config())
    except (OSError, FraudstreamError) as exc:
        console.print(f"[red]cannot start the worker:[/red] {exc}")
        raise typer.Exit(2) from None
    if settings.worker_metrics_port is not None:
        from fraudstream.runtime.kafka.ops import serve_operations

        serve_operations(member, settings.worker_metrics_port)
    # SIGTERM: finish the batch in hand, checkpoint, commit, leave the group.
    signal.signal(signal.SIGTERM, lambda *_: member.stop())
    signal.signal(signal.SIGINT, lambda *_: member.stop())
    member.run()


@app.command()
def retrain(
    days: Annotated[float, typer.Option(help="Train on the stored traffic of the last N days.")] = 30.0,
    margin: Annotated[
        float, typer.Option(help="Promote only if average precision is better by this much.")
    ] = 0.01,
    label_delay: Annotated[str, _LABEL_DELAY] = "0s",
    model: Annotated[str, typer.Option(help="Kind of challenger.")] = "lightgbm",
) -> None:
    """Train a challenger on recent labelled traffic (reviews + chargebacks) and promote it if it beats
    the champion on the same holdout; otherwise it scores in shadow.

    Example: `FRAUDSTREAM_DATA_DIR=data fraudstream retrain --days 14 --margin 0.02`
    """
    from fraudstream.ml.registry import Registry
    from fraudstream.ml.retrain import retrain as run
    from fraudstream.storage import Store

    settings = _settings(store_only=True)
    since = int(time.time() * 1000 - days * 86_400_000)
    result = run(
        Store(settings.effective_database_url),
        Registry(settings.models_dir),
        since_ms=since,
        label_delay_ms=_duration_ms(label_delay),
        margin=margin,
        kind=model,
    )
    out.print_json(json.dumps(result))
