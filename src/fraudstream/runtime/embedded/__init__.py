"""The embedded runtime: one process, FastAPI + engine + SQLite, decisions durable before they return."""

from fraudstream.runtime.decider import Outcome
from fraudstream.runtime.embedded.service import ScoringService

__all__ = ["Outcome", "ScoringService"]
