"""smart_search's copies of the asset filter columns (migration 011) follow inserts and asset updates."""

from __future__ import annotations

import numpy as np

from photosearch.db import Database
from photosearch.db.accounts import create_user
from photosearch.db.embedding import ensure_embedding_model
from photosearch.db.libraries import create_library
from photosearch.search import SearchQuery, SearchService


def test_filter_columns_follow_the_asset(db: Database) -> None:
    ensure_embedding_model(db, "tiny", 8)
    user = create_user(db, "u", "u@example.org")
    lib = create_library(db, user["id"], "lib", ["/p"])
    vec = np.arange(1, 9, dtype=np.float32)
    with db.connection() as conn:
        asset = conn.execute(
            "INSERT INTO assets (owner_id, library_id, original_path, original_file_name, checksum, file_size,"
            " file_created_at, file_modified_at, local_date_time) VALUES (%s, %s, '/p/a.jpg', 'a.jpg', '\\x01', 1,"
            " now(), now(), '2020-05-01') RETURNING id",
            (user["id"], lib["id"]),
        ).fetchone()[0]
        conn.execute("INSERT INTO smart_search (asset_id, embedding) VALUES (%s, %s)", (asset, vec))  # as ingest does
    me = {"id": user["id"], "is_admin": False}
    service = SearchService(db)

    def found(**filters) -> bool:
        page = service.search(SearchQuery(vector=vec.tolist(), k=5, **filters), me)
        return [h.id for h in page.items] == [asset]

    assert found() and found(is_favorite=False) and not found(is_favorite=True)
    with db.connection() as conn:
        conn.execute("UPDATE assets SET is_favorite = true WHERE id = %s", (asset,))
    assert found(is_favorite=True) and not found(is_favorite=False)
    with db.connection() as conn:
        conn.execute("UPDATE assets SET deleted_at = now() WHERE id = %s", (asset,))
    assert not found() and found(trashed_only=True) and found(with_deleted=True)
    with db.connection() as conn:
        conn.execute("UPDATE assets SET deleted_at = NULL, visibility = 'locked' WHERE id = %s", (asset,))
    assert not found() and found(visibility=["locked"])
    with db.connection() as conn:
        row = conn.execute(
            "SELECT owner_id, library_id, local_date_time::date::text, is_favorite FROM smart_search"
        ).fetchone()
    assert row == (user["id"], lib["id"], "2020-05-01", True)
