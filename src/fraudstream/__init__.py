"""fraudstream: real-time transaction fraud detection with one vectorized core.

The public Python API; everything else is internal. Names are imported on first use, so that
``import fraudstream`` (and the ``fraudstream`` command's ``--help``) stays instant while the engine
(NumPy, Arrow, compiled kernels, models) takes seconds to load.

>>> import fraudstream
>>> [name for name in fraudstream.__all__ if getattr(fraudstream, name, None) is None]
[]
"""

from __future__ import annotations

import importlib

from fraudstream.kernel_cache import use_versioned_cache

use_versioned_cache()  # before anything imports numba (see kernel_cache)

# Not typing.TYPE_CHECKING: importing typing would double the time `import fraudstream` takes.
TYPE_CHECKING = False

__version__ = "0.1.0"

__all__ = [
    "DecisionBatch",
    "Engine",
    "EngineConfig",
    "FraudstreamError",
    "FraudstreamWarning",
    "Settings",
    "TransactionBatch",
    "__version__",
    "backtest",
    "evaluate",
    "load_model",
    "replay",
    "score",
]

#: Where each public name lives, imported by ``__getattr__`` when first asked for.
_HOMES = {
    "DecisionBatch": "fraudstream.core.engine",
    "Engine": "fraudstream.core.engine",
    "EngineConfig": "fraudstream.core.engine",
    "TransactionBatch": "fraudstream.core.batch",
    "FraudstreamError": "fraudstream.errors",
    "Settings": "fraudstream.config",
    "FraudstreamWarning": "fraudstream.offline",
    "backtest": "fraudstream.offline",
    "evaluate": "fraudstream.offline",
    "load_model": "fraudstream.offline",
    "replay": "fraudstream.offline",
    "score": "fraudstream.offline",
}

if TYPE_CHECKING:
    from fraudstream.config import Settings
    from fraudstream.core.batch import TransactionBatch
    from fraudstream.core.engine import DecisionBatch, Engine, EngineConfig
    from fraudstream.errors import FraudstreamError
    from fraudstream.offline import FraudstreamWarning, backtest, evaluate, load_model, replay, score


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'fraudstream' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # the next lookup finds it without coming here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
