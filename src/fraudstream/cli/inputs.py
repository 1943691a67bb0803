"""What the commands that read transaction files share: reading them, their options, and parsing."""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from fraudstream.cli.app import console

if TYPE_CHECKING:
    import pyarrow as pa


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


def _read_or_exit(
    source: str, data_from: str | None = None, data_to: str | None = None
) -> list[Any] | pa.Table:
    """The records of ``source`` (a file, stdin, or a lake's transactions from ``data_from`` to
    ``data_to``); an unreadable file ends the command with what is wrong and exit code 2."""
    from pyarrow import ArrowInvalid

    from fraudstream.errors import ValidationError

    if _is_lake(source):
        return _lake_or_exit(source, data_from, data_to)[0]
    try:
        return _read_records(source)
    except FileNotFoundError:
        problem = "does not exist"
    except (ValidationError, ValueError, ArrowInvalid, UnicodeDecodeError) as exc:
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

    from fraudstream.ml.dataset import parse_max_invalid

    for line in reading.report():
        console.print(escape(line), highlight=False)
    refusal = reading.refusal(parse_max_invalid(max_invalid))
    if refusal is not None:
        console.print(f"[red]error:[/red] {escape(refusal)}", highlight=False)
        raise typer.Exit(2)


def _config_error_exit(exc: Exception) -> typer.Exit:
    """Print a problem with the input (naive times, a bad --map, ...); exit 2 to raise."""

    console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
    return typer.Exit(2)


def _history_or_exit(
    data: str,
    map_: str | None,
    timezone: str | None,
    max_invalid: str,
    *,
    labels: str | None = None,
    data_from: str | None = None,
    data_to: str | None = None,
) -> Any:
    """The history in ``data`` (a file, or a lake's transactions from ``data_from`` to ``data_to``),
    with the ground truth of ``labels`` if given, and what reading it found printed; exit 2 if it
    cannot be used."""
    from fraudstream.errors import ConfigError
    from fraudstream.ml.dataset import history_of_table, parse_mapping, read_history, read_table, with_labels

    try:
        mapping = parse_mapping(map_)
        if not _is_lake(data) and labels is None:
            history, reading = read_history(Path(data), mapping, timezone=timezone)
        else:
            if _is_lake(data):
                table, digest = _lake_or_exit(data, data_from, data_to)
            else:
                table = read_table(Path(data))
                digest = hashlib.sha256(Path(data).read_bytes()).hexdigest()
            if labels is not None:
                truth = _labels_or_exit(labels)
                table = with_labels(table, truth, labels, mapping.get("transaction_id", "transaction_id"))
                digest = hashlib.sha256(f"{digest} {_digest(truth)}".encode()).hexdigest()
            elif mapping.get("is_fraud", "is_fraud") not in table.column_names:
                raise ConfigError(
                    f"{data}: the lake holds no labels; give them with --labels FILE (columns "
                    "transaction_id, is_fraud and optionally label_time, as `fraudstream simulate "
                    "--labels` writes them) or --labels database (the verdicts and chargebacks the "
                    "server stored)"
                )
            history, reading = history_of_table(table, data, digest[:16], mapping, timezone=timezone)
    except ConfigError as exc:
        raise _config_error_exit(exc) from None
    _checked_or_exit(reading, max_invalid)
    return history


def _is_lake(source: str) -> bool:
    """A data lake rather than a file: ``s3://bucket/prefix``, ``file://...`` or a folder."""
    return source.startswith(("s3://", "file://")) or Path(source).is_dir()


def _lake_or_exit(url: str, data_from: str | None, data_to: str | None) -> tuple[pa.Table, str]:
    """A lake's transactions as sent, in log order, and a fingerprint of the files read; a URL that
    holds no lake, or a lake that does not answer, ends the command with why (exit 2)."""
    from fraudstream.cli.app import _settings
    from fraudstream.errors import ConfigError
    from fraudstream.sinks.lake import read_transactions

    first, last = (None if day is None else date.fromisoformat(day) for day in (data_from, data_to))
    endpoint = _settings(store_only=True).s3_endpoint_url if url.startswith("s3://") else None
    try:
        table, digest = read_transactions(url, endpoint_url=endpoint, first_day=first, last_day=last)
    except ConfigError as exc:
        raise _config_error_exit(exc) from None
    except OSError as exc:  # the object store refused or did not answer
        raise _config_error_exit(OSError(f"{url}: cannot read the lake: {exc}")) from None
    console.print(f"{url}: {table.num_rows:,} transactions read from the lake", highlight=False)
    return table, digest


def _labels_or_exit(source: str) -> pa.Table:
    """Labels from a file (CSV or Parquet) or, for ``database``, the ones the server stored
    (analysts' verdicts and chargebacks, oldest first)."""
    import pyarrow as pa

    from fraudstream.errors import ConfigError
    from fraudstream.ml.dataset import read_table

    if source != "database":
        try:
            return read_table(Path(source))
        except (ConfigError, OSError) as exc:
            raise _config_error_exit(exc) from None
    from fraudstream.cli.app import _settings
    from fraudstream.storage import Store

    store = Store(_settings(store_only=True).effective_database_url)
    try:
        stored = store.labels_after(0)
    finally:
        store.close()
    return pa.table(
        {
            "transaction_id": pa.array([label["transaction_id"] for label in stored], pa.string()),
            "is_fraud": pa.array([bool(label["is_fraud"]) for label in stored], pa.bool_()),
            "label_time": pa.array([label["label_time"] for label in stored], pa.int64()).cast(
                pa.timestamp("ms", tz="UTC")
            ),
        }
    )


def _digest(table: pa.Table) -> str:
    """A fingerprint of a table's contents."""
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue()).hexdigest()


def _day_option(text: str | None) -> str | None:
    """--data-from / --data-to: refused at once when not a day such as 2026-01-31."""
    if text is not None:
        try:
            date.fromisoformat(text)
        except ValueError:
            raise typer.BadParameter(f"{text!r} is not a day; write it as YYYY-MM-DD") from None
    return text


#: The options of every command that can read a data lake.
_DataFromOption = Annotated[
    str | None,
    typer.Option(
        callback=_day_option,
        help="With a lake: read only its days from this one on (YYYY-MM-DD, UTC, by the transactions' "
        "own time). Replays warm their features up on what is read, so start early enough.",
    ),
]
_DataToOption = Annotated[
    str | None,
    typer.Option(callback=_day_option, help="With a lake: read only its days up to this one (YYYY-MM-DD)."),
]
_LabelsOption = Annotated[
    str | None,
    typer.Option(
        help="Ground truth for --data (a lake has none): a CSV or Parquet file with transaction_id, "
        "is_fraud and optionally label_time (as `fraudstream simulate --labels` writes), or "
        "database for the verdicts and chargebacks the server stored (FRAUDSTREAM_DATABASE_URL or "
        "FRAUDSTREAM_DATA_DIR). The latest label of a transaction wins; unlabelled ones are "
        "legitimate. Replaces an is_fraud column of the file.",
    ),
]

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


#: ``--features`` of the commands that replay history: the declared aggregations the server computes.
_FeaturesOption = Annotated[
    Path | None,
    typer.Option(
        "--features",
        envvar="FRAUDSTREAM_FEATURES_PATH",
        help="YAML of declared feature aggregations (as the server's FRAUDSTREAM_FEATURES_PATH): the "
        "replay computes them, so that a model learns and is measured on the features it serves with.",
    ),
]


def _engine_base(features: Path | None) -> Any:
    """The engine configuration a replay starts from: the default, with the declared aggregations of
    ``features`` when given (an unreadable or invalid file: BadParameter naming every problem)."""
    from fraudstream.config import declared_features
    from fraudstream.core.engine import EngineConfig

    if features is None:
        return EngineConfig()
    try:
        return EngineConfig(features=declared_features(features))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--features") from None


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


#: ``--registry`` (or ``--models-dir``, as the servers and workers name it) of the model commands.
_RegistryOption = Annotated[
    str | None,
    typer.Option(
        "--registry",
        "--models-dir",
        help="Model registry: a folder or s3://bucket/prefix (default: FRAUDSTREAM_REGISTRY_DIR, else "
        "FRAUDSTREAM_DATA_DIR/models).",
    ),
]


def _registry(location: str | None) -> Any:
    """The registry at ``location`` (a folder, or a URL kept as text), else the configured one."""
    from fraudstream.config import Settings
    from fraudstream.ml.registry import Registry

    if location is not None and "://" not in location:
        return Registry(Path(location))
    settings = Settings(demo=True)  # for an S3 registry's endpoint, FRAUDSTREAM_S3_ENDPOINT_URL
    return Registry(location if location is not None else settings.models_dir, settings.s3_endpoint_url)
