"""How commands hand their results to scripts: one JSON object on stdout, valid for any JSON reader."""

from __future__ import annotations

import json
import math
from typing import Any

from fraudstream.cli.app import out


def plain(value: Any) -> Any:
    """``value`` as JSON can hold it: NumPy numbers as Python ones (a count stays an integer), and a
    missing figure (NaN, as a metric of a window without frauds is) as null, not the NaN token that
    strict readers such as jq refuse.

    >>> import numpy as np
    >>> plain({"rows": np.int64(3), "auc": float("nan"), "shares": [np.float32(0.5)]})
    {'rows': 3, 'auc': None, 'shares': [0.5]}
    """
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # a NumPy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def print_json(result: Any) -> None:
    """``result`` as one JSON document on stdout: indented and coloured in a terminal, plain when
    piped (and then written as it is, without Rich's highlighting, which a large list would slow)."""
    text = json.dumps(plain(result), allow_nan=False)
    if out.is_terminal:
        out.print_json(text)
    else:
        out.file.write(text + "\n")
        out.file.flush()
