"""Storage through SQLAlchemy Core: SQLite by default, PostgreSQL by URL, versioned migrations."""

from fraudstream.storage.store import ROLES, Store

__all__ = ["ROLES", "Store"]
