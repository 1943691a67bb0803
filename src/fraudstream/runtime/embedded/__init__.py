"""The embedded runtime: one process, FastAPI + engine + SQLite, decisions durable before they return."""

from fraudstream.runtime.embedded.service import Outcome, ScoringService

__all__ = ["Outcome", "ScoringService"]
