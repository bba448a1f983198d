"""The embedding column follows the active model; switching models with data needs an explicit re-embed."""

from __future__ import annotations

import numpy as np
import pytest

from photosearch.db import Database
from photosearch.db.accounts import create_user, embedding_info
from photosearch.db.embedding import ensure_embedding_model, vector_index_exists
from photosearch.db.libraries import create_library
from photosearch.db.server import DatabaseError


def _insert_asset_with_embedding(db: Database, dim: int) -> None:
    user = create_user(db, "u", "u@example.org")
    lib = create_library(db, user["id"], "lib", ["/tmp"])
    with db.connection() as conn:
        asset_id = conn.execute(
            "INSERT INTO assets (owner_id, library_id, original_path, original_file_name, checksum, file_size,"
            " file_created_at, file_modified_at, local_date_time, indexed_at)"
            " VALUES (%s, %s, '/tmp/a.jpg', 'a.jpg', '\\x01', 1, now(), now(), now(), now()) RETURNING id",
            (user["id"], lib["id"]),
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO smart_search (asset_id, embedding) VALUES (%s, %s)",
            (asset_id, np.ones(dim, dtype=np.float32)),
        )


def test_switch_dimension_on_empty_database_is_free(db: Database) -> None:
    assert ensure_embedding_model(db, "tiny", 64) is True
    assert embedding_info(db) == {"model": "tiny", "dim": 64, "index_type": "vector"}
    assert ensure_embedding_model(db, "tiny", 64) is False
    with db.connection() as conn:
        assert vector_index_exists(conn)
        typ = conn.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = 'smart_search'::regclass AND attname = 'embedding'"
        ).fetchone()[0]
    assert typ == "vector(64)"


def test_switch_with_data_requires_reembed(db: Database) -> None:
    ensure_embedding_model(db, "tiny", 64)
    _insert_asset_with_embedding(db, 64)
    with pytest.raises(DatabaseError, match=r"models use other --reembed"):
        ensure_embedding_model(db, "other", 32)
    assert embedding_info(db) == {"model": "tiny", "dim": 64, "index_type": "vector"}  # nothing changed
    assert ensure_embedding_model(db, "other", 32, reembed=True) is True
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM smart_search").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM assets WHERE indexed_at IS NULL").fetchone()[0] == 1
