"""Feature snapshots of the earlier format (one array per field) restore into today's records."""

from __future__ import annotations

import base64
import zlib

import numpy as np
import pytest

from fraudstream.core.batch import LabelBatch, TransactionBatch
from fraudstream.core.features import FORMAT_VERSION, EntitySpec, FeatureConfig, FeatureState
from fraudstream.errors import StateError

CONFIG = FeatureConfig(
    entities=(EntitySpec("user", ("30s", "10m", "1h")), EntitySpec("terminal", ("10m", "1h"), labels=True)),
    label_windows=("10m", "1h"),
    idle_expiry="2h",
    buckets=4,
)


def stream() -> TransactionBatch:
    rng = np.random.default_rng(11)
    n = 60
    ts = np.cumsum(rng.exponential(20_000, n)).astype(np.int64) + 1_700_000_000_000
    return TransactionBatch.from_pydict(
        {
            "transaction_id": [f"t{i}" for i in range(n)],
            "timestamp": ts.tolist(),
            "user_id": [f"u{k}" for k in rng.integers(0, 3, n)],
            "amount": np.round(rng.lognormal(3, 1, n), 2).tolist(),
            "currency": ["USD"] * n,
            "terminal_id": [f"T{k}" for k in rng.integers(0, 3, n)],
            "merchant_id": [f"m{k}" for k in rng.integers(0, 4, n)],
            "device_id": [f"d{k}" for k in rng.integers(0, 5, n)],
            "country": [f"C{k}" for k in rng.integers(0, 3, n)],
            "lat": rng.uniform(-60, 60, n).tolist(),
            "lon": rng.uniform(-170, 170, n).tolist(),
        }
    )


def label(batch: TransactionBatch) -> LabelBatch:
    return LabelBatch.from_pydict(
        {
            "transaction_id": ["t3"],
            "is_fraud": [True],
            "label_time": [0],
            "transaction_time": [int(batch.timestamp_ms[3])],
            "terminal_id": [batch.strings("terminal_id")[3].as_py()],
        }
    )


#: ``FeatureState(CONFIG)`` after ``stream()[:40]`` and ``label(stream())``, snapshotted by format 1
#: (zlib, base64).
FORMAT_1_SNAPSHOT = (
    "eNrdVV1sG0UQvpSf2iVRgig/Dyi1LAqNsIp9PjuXQpS7c5o/9SFpqirQBHO19+JTzj/xnUnctNSCJkgFhHiKFQkV0RZaQCkPjRTE"
    "Q60qqC+JUHmJQEjUFUJFMdCqqEKgArtnb/CtnZzd5qWsNJrd2Z1vdnZmZzr69/H7dtdQGQtFTdjFeFxMqvZdtgMT9qCWjAE4tb+Q"
    "YO0Omx1ENFlLIkFCBXEkkWSgBJFgBEAlKIhKkgo0KHHChRoSdf0D7qEjDlsxnmyGp4iq5teMkDRzd5ghIAaNiAxrQHTYSkAlxgRU"
    "HB42QLpoJ4npsDF3gqwmwuqoAdvjoQlspgTV7BGGQdSA6XWS96WrfliIScbKSzwtiWmaUHEQgLv+MIgHQiKchIzwzeRLsFXfmrSg"
    "GSywXsbMQqU+aCAeliOiQvjgcnq8G+XEqgmNSMaSDL9jL4LgVTkASB8YxmmWknJ1BggPPG6vmYFKPQhEExEtniRd8LrpjXIBWyB8"
    "aKbZan3AAV2/yLrYKmtiWdhytdbFmnzgipBLK66LLfm5tFllLAtdUndbSgovXVnhLQtfWnxp2mkaxYqgpbiYCBLQJZWA1tGHoDSg"
    "RAMj/rCqJ5ITDdbJNLe0oK1oRJKH4QZs24oSHQNBvyJqIAJUdNrucoaRmYOJwAjQkITBl5NBocMr4kGgoLkkKiqA2xExDIozfEyO"
    "BKNj+mm726nHsgDrCtnz7q9iaPFEMUSx88UwxfrIQTmoAD8Yj8lx/c1o/XvqoP411Bz4w6ENGBRWDzR8ryM3O4fnNk8sWLgOyA8t"
    "WD7qhvzwgqXh0xtfv1VDUYdfzvML5/L80bOv11FwfPfrZ4hRyW+e1Pkja8jXOm8cqbats49ziEi5293PI0LzwXd7eERwg+vKzvC5"
    "vh1wznGS1CCMtp7SzywtHuMRoTNU6ltB+umiQFEN/OKe28LyyRxP3dVItUlSt4AI2Z1aiQnbJi0CspU91CNsWX5Yl++df9A33xgT"
    "0PlcX5pDhOZNg3YBEUX18nvHZwpnKhpc0+AmoXXLD+vcn+Ny7/3lm33mDR9aLJ/M8PONCd6oi94wLSBC8m2TNqEr+zuP7jP1bHt7"
    "Qbfs+OqVxzouL9fuxuvjN5baT3/i6MDrLjXVfu2DK514PVD7ff/4zqe5puw76SQYyKSTT128+YCbO5ac3vRh6CXu877ZrVPP13HX"
    "et68fHWiN7NWvv1PRuZe5beeuzS3+R/GetYFOeWx+nZC/jdjrdRxrIdxqtUn9TBepfo4ry7cvq7z4zFDXpn6/3P2uiEvB97PVaVv"
    "S/+inz8/9Fu5vK40Dvdsfto8H8N+Um9t2QX50XrrFAv5a/Wr8cP7WI7P4X28Js/h/Zr9+XiQccb2cdx+/DIvx/HE+zgewRMF/seK"
    "YX+t/F+1V9DHeUX2ObM1rMncaOvpQt1OtZ2K1fGIUD3/onGm0GuK6zYH6/lDvnxf6+WzfzasW7eJ/sVNrqQLfSrFLe65KuA+9V/f"
    "NPYpGzjjG22dEtbrO0tvJ3wzL27X739rRy2PiOzdxX0w1/cEjwj15XOXpgu65ceZ+7d3XJk+0Vncd7L7u1f7zoIwJxw9f1/nej17"
    "Iz/Kv7wgOAY="
)


def test_a_format_1_snapshot_restores_and_continues_like_an_uninterrupted_run() -> None:
    batch = stream()
    straight = FeatureState(CONFIG)
    straight.compute(batch.slice(0, 40))
    straight.apply_labels(label(batch))
    expected = straight.compute(batch.slice(40, 60)).values

    restored = FeatureState.restore(zlib.decompress(base64.b64decode(FORMAT_1_SNAPSHOT)), CONFIG)
    np.testing.assert_array_equal(restored.compute(batch.slice(40, 60)).values, expected)


def test_a_restored_format_1_snapshot_is_written_back_in_the_current_format() -> None:
    restored = FeatureState.restore(zlib.decompress(base64.b64decode(FORMAT_1_SNAPSHOT)), CONFIG)
    data = restored.snapshot()
    assert int.from_bytes(data[6:8], "little") == FORMAT_VERSION == 2
    again = FeatureState.restore(data, CONFIG)
    batch = stream().slice(40, 60)
    np.testing.assert_array_equal(again.compute(batch).values, restored.compute(batch).values)


def test_restore_refuses_a_format_newer_than_it_reads() -> None:
    data = FeatureState(CONFIG).snapshot()
    newer = data[:6] + (FORMAT_VERSION + 1).to_bytes(2, "little") + data[8:]
    with pytest.raises(StateError, match="replay the event log"):
        FeatureState.restore(newer, CONFIG)
