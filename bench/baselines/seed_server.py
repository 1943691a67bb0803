"""A one-event-at-a-time server of the kind users come from, as the HTTP benchmark's baseline.

Per request: a pandas DataFrame of one row, a scikit-learn IsolationForest predict, and an INSERT with
its own commit into SQLite. Run: ``python bench/baselines/seed_server.py PORT DB_PATH``.
"""

from __future__ import annotations

import sqlite3
import sys
import threading

import numpy as np
import pandas as pd
import uvicorn
from fastapi import FastAPI
from sklearn.ensemble import IsolationForest

app = FastAPI()
forest = IsolationForest(n_estimators=100, random_state=0).fit(
    np.random.default_rng(0).lognormal(3, 1, (2000, 3))
)
history: dict[str, list[float]] = {}
lock = threading.Lock()
database = sqlite3.connect(sys.argv[2] if len(sys.argv) > 2 else ":memory:", check_same_thread=False)
database.execute(
    "CREATE TABLE IF NOT EXISTS tx (id TEXT PRIMARY KEY, user_id TEXT, amount REAL, fraud INTEGER)"
)


@app.post("/v1/transactions")
def score(body: dict) -> dict:  # type: ignore[type-arg]
    amounts = history.setdefault(body["user_id"], [])
    mean = sum(amounts) / len(amounts) if amounts else body["amount"]
    frame = pd.DataFrame([{"amount": body["amount"], "mean": mean, "count": len(amounts)}])
    fraud = int(forest.predict(frame.values)[0] == -1)
    amounts.append(body["amount"])
    with lock:
        database.execute(
            "INSERT OR IGNORE INTO tx VALUES (?, ?, ?, ?)",
            (body["transaction_id"], body["user_id"], body["amount"], fraud),
        )
        database.commit()
    return {"transaction_id": body["transaction_id"], "is_fraud": bool(fraud)}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
