"""fraudstream: real-time transaction fraud detection with one vectorized core."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
