"""Database layer: server (embedded or external), pool, migrations, and all SQL (one module per concern)."""

from photosearch.db.pool import Database, open_database
from photosearch.db.server import DatabaseError

__all__ = ["Database", "DatabaseError", "open_database"]
