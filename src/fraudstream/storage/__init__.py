"""Storage through SQLAlchemy Core: SQLite by default, PostgreSQL by URL, versioned migrations."""

from fraudstream.storage.reports import ORDERS, Reports
from fraudstream.storage.store import ROLES, Store

__all__ = ["ORDERS", "ROLES", "Reports", "Store"]
