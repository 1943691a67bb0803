"""Detection quality on data we did not write: the Fraud Detection Handbook's simulator and protocol.

Run: ``.venv/bin/python bench/handbook.py`` (``--seeds 0 1 2 3 4`` by default; ``--seeds 0`` for one).

Le Borgne et al., *Reproducible Machine Learning for Credit Card Fraud Detection - Practical Handbook*
(2022), publish a transaction simulator and an evaluation protocol. This script implements both from
the book's description (our code, vectorized with NumPy), then, on the same data for each seed:

- the book's baseline: its 15 features (amount, weekend, night; per customer the number of
  transactions and mean amount over 1, 7 and 30 days; per terminal the number of transactions and
  the fraud rate over 1, 7 and 30 days ending 7 days ago) with a random forest and a logistic
  regression, as in its chapter 3 (features standardized, library defaults);
- fraudstream: the raw file read as a user would (naive times with ``timezone="UTC"``, integer ids),
  ``train`` on the training week with labels known 7 days after each transaction, ``evaluate`` by
  replaying the whole history through the engine that serves, nothing tuned per seed.

The protocol (chapter 3): 5,000 customers, 10,000 terminals, 183 days from 2018-04-01; train on
2018-07-25..31, test on 2018-08-08..14; a customer with a fraud known by a test day (frauds from the
start of training up to the day 8 days before) is left out of that day. Metrics: ROC AUC, average
precision, and card precision@100 (each day, the 100 customers with the highest score; the share of
them with a fraud that day; customers caught on an earlier test day are left out of later days).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.spatial import cKDTree
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.preprocessing import StandardScaler

DAY_S = 86_400
START = np.datetime64("2018-04-01T00:00:00")
TRAIN_START_DAY = 115  # 2018-07-25
TRAIN_DAYS = DELAY_DAYS = TEST_DAYS = 7
FOREST = "book features + random forest"
FRAUDSTREAM = "fraudstream train + evaluate"
BOOK_FEATURES = (
    "TX_AMOUNT",
    "TX_DURING_WEEKEND",
    "TX_DURING_NIGHT",
    *(f"CUSTOMER_ID_{m}_{w}DAY_WINDOW" for w in (1, 7, 30) for m in ("NB_TX", "AVG_AMOUNT")),
    *(f"TERMINAL_ID_{m}_{w}DAY_WINDOW" for w in (1, 7, 30) for m in ("NB_TX", "RISK")),
)


@dataclass(frozen=True)
class World:
    """The simulator's settings (the book's defaults)."""

    customers: int = 5_000
    terminals: int = 10_000
    days: int = 183
    radius: float = 5.0


def simulate(seed: int, world: World = World()) -> pd.DataFrame:
    """Transactions as the book's simulator makes them, in time order, with its three fraud scenarios.

    Customers and terminals sit uniformly on a 100 x 100 grid; a customer pays at terminals within
    ``radius``, a Poisson number of times a day (mean uniform in 0..4), around noon (normal, sd 20,000
    s, draws outside the day dropped), amounts normal with mean uniform in 5..100 and sd half of it
    (a negative draw is replaced by a uniform one in 0..2 x mean), rounded to cents.
    """
    rng = np.random.default_rng(seed)
    c, t, d = world.customers, world.terminals, world.days
    customer_xy = rng.uniform(0, 100, (c, 2))
    mean_amount = rng.uniform(5, 100, c)
    per_day = rng.uniform(0, 4, c)
    terminal_xy = rng.uniform(0, 100, (t, 2))
    near = cKDTree(terminal_xy).query_ball_point(customer_xy, r=world.radius)
    reachable = np.array([len(n) for n in near])
    offsets = np.concatenate([[0], np.cumsum(reachable)])
    flat = np.concatenate([np.sort(np.asarray(n, dtype=np.int64)) for n in near])

    counts = rng.poisson(np.repeat(per_day, d).reshape(c, d))
    customer = np.repeat(np.repeat(np.arange(c), d), counts.ravel())
    day = np.repeat(np.tile(np.arange(d), c), counts.ravel())
    second = np.trunc(rng.normal(DAY_S / 2, 20_000, len(customer))).astype(np.int64)
    amount = rng.normal(mean_amount[customer], mean_amount[customer] / 2)
    negative = amount < 0
    amount[negative] = rng.uniform(0, 2 * mean_amount[customer[negative]])
    amount = np.round(amount, 2)
    pick = (rng.random(len(customer)) * np.maximum(reachable[customer], 1)).astype(np.int64)
    keep = (second > 0) & (second < DAY_S) & (reachable[customer] > 0)
    customer, day, second, amount = customer[keep], day[keep], second[keep], amount[keep]
    terminal = flat[np.minimum(offsets[customer] + pick[keep], len(flat) - 1)]
    seconds = second + day * DAY_S
    order = np.argsort(seconds, kind="stable")
    frame = pd.DataFrame(
        {
            "TRANSACTION_ID": np.arange(len(order), dtype=np.int64),
            "TX_DATETIME": START + seconds[order].astype("timedelta64[s]"),
            "CUSTOMER_ID": customer[order],
            "TERMINAL_ID": terminal[order],
            "TX_AMOUNT": amount[order],
            "TX_TIME_SECONDS": seconds[order],
            "TX_TIME_DAYS": day[order],
        }
    )
    _add_frauds(frame, rng, world)
    return frame


def _add_frauds(frame: pd.DataFrame, rng: np.random.Generator, world: World) -> None:
    """The book's scenarios, in its order: (1) every amount over 220; (2) each day two terminals are
    compromised for 28 days, all their transactions are fraud; (3) each day three customers are
    compromised for 14 days, a third of their transactions get 5x their amount and are fraud."""
    day = frame["TX_TIME_DAYS"].to_numpy()
    amount = frame["TX_AMOUNT"].to_numpy().copy()
    fraud = np.zeros(len(frame), dtype=np.int8)
    scenario = np.zeros(len(frame), dtype=np.int8)
    fraud[amount > 220] = 1
    scenario[amount > 220] = 1

    last_day = int(day.max())
    compromised = np.zeros((world.terminals, world.days + 28), dtype=bool)
    for start in range(last_day):
        for terminal in rng.choice(world.terminals, 2, replace=False):
            compromised[terminal, start : start + 28] = True
    hit = compromised[frame["TERMINAL_ID"].to_numpy(), day]
    fraud[hit] = 1
    scenario[hit] = 2

    by_customer = np.argsort(frame["CUSTOMER_ID"].to_numpy(), kind="stable")
    bounds = np.searchsorted(frame["CUSTOMER_ID"].to_numpy()[by_customer], np.arange(world.customers + 1))
    for start in range(last_day):
        victims = rng.choice(world.customers, 3, replace=False)
        rows = np.concatenate([by_customer[bounds[v] : bounds[v + 1]] for v in victims])
        rows = np.sort(rows[(day[rows] >= start) & (day[rows] < start + 14)])
        chosen = rng.choice(rows, len(rows) // 3, replace=False)
        amount[chosen] *= 5
        fraud[chosen] = 1
        scenario[chosen] = 3
    frame["TX_AMOUNT"] = np.round(amount, 2)
    frame["TX_FRAUD"] = fraud
    frame["TX_FRAUD_SCENARIO"] = scenario


def _rolling(
    key: npt.NDArray[np.int64], time: npt.NDArray[np.int64], values: list[npt.NDArray[np.float64]], span: int
) -> list[npt.NDArray[np.float64]]:
    """Per row, the sums of ``values`` over the rows of the same key with time in (time - span, time].
    Rows must be sorted by (key, time)."""
    packed = key * (1 << 40) + time
    first = np.searchsorted(packed, packed - span, side="right")
    last = np.searchsorted(packed, packed, side="right")
    sums = []
    for v in values:
        cumulative = np.concatenate([[0.0], np.cumsum(v)])
        sums.append(cumulative[last] - cumulative[first])
    return sums


def book_features(frame: pd.DataFrame, delay_days: int = DELAY_DAYS) -> pd.DataFrame:
    """The book's 15 features (chapter 3), computed exactly over time windows."""
    out = pd.DataFrame(index=frame.index)
    out["TX_AMOUNT"] = frame["TX_AMOUNT"]
    stamp = frame["TX_DATETIME"].dt
    out["TX_DURING_WEEKEND"] = (stamp.day_of_week >= 5).astype(np.int8)
    out["TX_DURING_NIGHT"] = (stamp.hour <= 6).astype(np.int8)
    seconds = frame["TX_TIME_SECONDS"].to_numpy()
    ones = np.ones(len(frame))
    for kind in ("CUSTOMER_ID", "TERMINAL_ID"):
        order = np.lexsort((seconds, frame[kind].to_numpy()))
        key, time = frame[kind].to_numpy()[order], seconds[order]
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        if kind == "CUSTOMER_ID":
            amount = frame["TX_AMOUNT"].to_numpy()[order]
            for w in (1, 7, 30):
                count, total = _rolling(key, time, [ones, amount], w * DAY_S)
                out[f"{kind}_NB_TX_{w}DAY_WINDOW"] = count[back]
                out[f"{kind}_AVG_AMOUNT_{w}DAY_WINDOW"] = (total / count)[back]
        else:
            fraud = frame["TX_FRAUD"].to_numpy()[order].astype(np.float64)
            recent_count, recent_fraud = _rolling(key, time, [ones, fraud], delay_days * DAY_S)
            for w in (1, 7, 30):
                count, frauds = _rolling(key, time, [ones, fraud], (delay_days + w) * DAY_S)
                count, frauds = count - recent_count, frauds - recent_fraud
                with np.errstate(invalid="ignore", divide="ignore"):
                    risk = np.where(count > 0, frauds / count, 0.0)
                out[f"{kind}_NB_TX_{w}DAY_WINDOW"] = count[back]
                out[f"{kind}_RISK_{w}DAY_WINDOW"] = risk[back]
    return out[list(BOOK_FEATURES)]


def split(frame: pd.DataFrame) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """The protocol's training rows and test rows (known compromised customers left out)."""
    day = frame["TX_TIME_DAYS"].to_numpy()
    customer = frame["CUSTOMER_ID"].to_numpy()
    fraud = frame["TX_FRAUD"].to_numpy() == 1
    train = (day >= TRAIN_START_DAY) & (day < TRAIN_START_DAY + TRAIN_DAYS)
    test = np.zeros(len(frame), dtype=bool)
    known = set(customer[train & fraud].tolist())
    for k in range(TEST_DAYS):
        known |= set(customer[fraud & (day == TRAIN_START_DAY + TRAIN_DAYS + k - 1)].tolist())
        today = day == TRAIN_START_DAY + TRAIN_DAYS + DELAY_DAYS + k
        test |= today & ~np.isin(customer, list(known))
    return train, test


def card_precision_at_k(frame: pd.DataFrame, score: npt.NDArray[np.float64], k: int = 100) -> float:
    """The book's card precision@k: per day, the k customers with the highest score that day (their
    highest transaction's), the share with a fraud that day; customers found on an earlier day are
    left out of the later days. The mean over the days."""
    days = pd.DataFrame(
        {"day": frame["TX_TIME_DAYS"].to_numpy(), "customer": frame["CUSTOMER_ID"].to_numpy(),
         "score": score, "fraud": frame["TX_FRAUD"].to_numpy()}
    )  # fmt: skip
    found: set[int] = set()
    precisions = []
    for _, today in days.groupby("day", sort=True):
        today = today[~today["customer"].isin(found)]
        per_card = today.groupby("customer").agg(score=("score", "max"), fraud=("fraud", "max"))
        top = per_card.sort_values("score", ascending=False, kind="stable").head(k)
        caught = top.index[top["fraud"] == 1]
        precisions.append(len(caught) / k)
        found |= set(caught.tolist())
    return float(np.mean(precisions))


#: The data set's columns as fraudstream's fields (what a user passes as ``--map``).
FRAUDSTREAM_MAP = {
    "transaction_id": "TRANSACTION_ID",
    "timestamp": "TX_DATETIME",
    "user_id": "CUSTOMER_ID",
    "terminal_id": "TERMINAL_ID",
    "amount": "TX_AMOUNT",
    "is_fraud": "TX_FRAUD",
}


def start_ms() -> int:
    """The simulation's first day, 2018-04-01, in milliseconds since the epoch (its times are UTC)."""
    return int((START - np.datetime64("1970-01-01T00:00:00")) / np.timedelta64(1, "ms"))


def metrics(frame: pd.DataFrame, score: npt.NDArray[np.float64]) -> dict[str, float]:
    truth = frame["TX_FRAUD"].to_numpy()
    return {
        "roc_auc": float(roc_auc_score(truth, score)),
        "average_precision": float(average_precision_score(truth, score)),
        "card_precision_at_100": card_precision_at_k(frame, score),
    }


def book_baselines(
    frame: pd.DataFrame, train: npt.NDArray[np.bool_], test: npt.NDArray[np.bool_]
) -> dict[str, dict[str, float]]:
    """The book's chapter-3 recipe: its features, standardized, a random forest and a logistic
    regression with scikit-learn's defaults (random_state 0)."""
    features = book_features(frame)
    scaler = StandardScaler().fit(features[train])
    x_train, x_test = scaler.transform(features[train]), scaler.transform(features[test])
    y_train = frame["TX_FRAUD"].to_numpy()[train]
    results = {}
    for name, model in (
        (FOREST, RandomForestClassifier(random_state=0, n_jobs=-1)),
        ("book features + logistic regression", LogisticRegression(random_state=0, max_iter=1000)),
    ):
        model.fit(x_train, y_train)
        results[name] = metrics(frame[test], model.predict_proba(x_test)[:, 1])
    return results


def fraudstream_path(frame: pd.DataFrame, test: npt.NDArray[np.bool_], folder: Path) -> dict[str, float]:
    """fraudstream's own train and evaluate on the raw file as the simulator writes it (naive times,
    integer ids): LightGBM, labels known 7 days after their transaction, label windows that end 7
    days back, nothing tuned per seed (``train`` searches its own settings on the training week)."""
    from fraudstream.ml.dataset import load_history
    from fraudstream.ml.train import evaluate, train

    path = folder / "transactions.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    history = load_history(path, FRAUDSTREAM_MAP, timezone="UTC")
    day_ms = DAY_S * 1000
    train_from = start_ms() + TRAIN_START_DAY * day_ms
    train_to = train_from + (TRAIN_DAYS + DELAY_DAYS) * day_ms
    delay = DELAY_DAYS * day_ms
    model, _ = train(
        history, "lightgbm", train_from_ms=train_from, train_to_ms=train_to, label_delay_ms=delay
    )
    _, replayed, _ = evaluate(
        history, model, from_ms=train_to, to_ms=train_to + TEST_DAYS * day_ms, label_delay_ms=delay
    )
    ids = history.batch.transaction_id.to_numpy(zero_copy_only=False).astype(np.int64)
    probability = np.full(len(frame), np.nan)
    probability[ids] = replayed.probability
    return metrics(frame[test], probability[test])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        began = time.perf_counter()
        frame = simulate(seed)
        train, test = split(frame)
        print(
            f"seed {seed}: {len(frame):,} transactions, {int(frame['TX_FRAUD'].sum()):,} frauds; "
            f"train {int(train.sum()):,} ({int(frame['TX_FRAUD'][train].sum())} frauds), "
            f"test {int(test.sum()):,} ({int(frame['TX_FRAUD'][test].sum())} frauds)",
            flush=True,
        )
        results = book_baselines(frame, train, test)
        with tempfile.TemporaryDirectory() as folder:
            results[FRAUDSTREAM] = fraudstream_path(frame, test, Path(folder))
        for method, values in results.items():
            rows.append({"seed": seed, "method": method, **values})
            print(f"  {method:<42} " + "  ".join(f"{k} {v:.3f}" for k, v in values.items()), flush=True)
        print(f"  ({time.perf_counter() - began:.0f} s)", flush=True)
    table = pd.DataFrame(rows)
    summary = table.groupby("method", sort=False).agg(["mean", "std"])
    print(f"\nover seeds {' '.join(map(str, args.seeds))} (mean, sd):")
    print(summary.drop(columns="seed").round(4).to_string())
    ours = table[table["method"] == FRAUDSTREAM].set_index("seed")
    forest = table[table["method"] == FOREST].set_index("seed")
    print(f"\nfraudstream minus {FOREST}, per seed then mean ± sd:")
    for metric in ("roc_auc", "average_precision", "card_precision_at_100"):
        difference = ours[metric] - forest[metric]
        per_seed = " ".join(f"{v:+.4f}" for v in difference)
        print(f"  {metric:<22} {per_seed}   mean {difference.mean():+.4f} ± {difference.std():.4f}")


if __name__ == "__main__":
    main()
