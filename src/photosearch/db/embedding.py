"""SQL for the embedding column and its vector index: dimension follows the active model.

A database holds embeddings of exactly one model. Switching to another model is an explicit
re-embed (`photosearch models use NAME --reembed`), never a silent mix of incompatible vectors.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from photosearch.db.pool import Database
from photosearch.db.server import DatabaseError

VECTOR_INDEX = "smart_search_embedding_idx"
# m=24 (pgvector's default is 16): at 1M clustered 512-d rows, m=16 left regions of the graph unreachable
# (unfiltered recall@10 0.930 even at ef_search 1000); m=24 gave 0.990 for a 21 % longer build and the same
# index size (README "Search benchmark").
HNSW_M = 24
HNSW_EF_CONSTRUCTION = 64


def get_embedding_model(conn: psycopg.Connection) -> tuple[str, int]:
    row = conn.execute("SELECT value FROM system_metadata WHERE key = 'embedding'").fetchone()
    if row is None:
        raise DatabaseError("schema is missing the embedding settings; run `photosearch db migrate`")
    return row[0]["model"], int(row[0]["dim"])


def vector_index_exists(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (VECTOR_INDEX,)).fetchone()
    return bool(row and row[0])


def keep_embeddings_inline(conn: psycopg.Connection) -> None:
    """STORAGE PLAIN: exact search reads vectors from the heap, never through TOAST (migration 010).

    `ALTER COLUMN ... TYPE` resets the storage to the type's default, so this follows every dimension change.
    """
    conn.execute("ALTER TABLE smart_search ALTER COLUMN embedding SET STORAGE PLAIN")


def create_vector_index(conn: psycopg.Connection) -> None:
    """HNSW on cosine distance. Built after a bulk load (much faster than growing it row by row)."""
    keep_embeddings_inline(conn)
    conn.execute(
        sql.SQL(
            "CREATE INDEX IF NOT EXISTS {} ON smart_search USING hnsw (embedding vector_cosine_ops)"
            " WITH (m = {}, ef_construction = {})"
        ).format(sql.Identifier(VECTOR_INDEX), sql.Literal(HNSW_M), sql.Literal(HNSW_EF_CONSTRUCTION))
    )


def drop_vector_index(conn: psycopg.Connection) -> None:
    conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(VECTOR_INDEX)))


def _set_dimension(conn: psycopg.Connection, model: str, dim: int) -> None:
    drop_vector_index(conn)
    # search_ivf and the trained lists (migration 013) hold the old model's codes and centroids.
    conn.execute("TRUNCATE search_ivf, smart_search, search_centroids")
    conn.execute("DELETE FROM system_metadata WHERE key = 'search_lists'")
    conn.execute(sql.SQL("ALTER TABLE smart_search ALTER COLUMN embedding TYPE vector({})").format(sql.Literal(dim)))
    conn.execute(
        "UPDATE system_metadata SET value = jsonb_build_object('model', %s::text, 'dim', %s::int)"
        " WHERE key = 'embedding'",
        (model, dim),
    )
    create_vector_index(conn)


def ensure_embedding_model(db: Database, model: str, dim: int, *, reembed: bool = False) -> bool:
    """Make the database ready for `model`'s embeddings. Returns True when it had to switch.

    With no embeddings stored, switching is free. With embeddings from another model, it needs
    `reembed=True`: the old vectors are dropped and every asset is marked for re-embedding.
    """
    with db.connection() as conn, conn.transaction():
        conn.execute("LOCK TABLE smart_search IN SHARE ROW EXCLUSIVE MODE")
        current, current_dim = get_embedding_model(conn)
        if current == model and current_dim == dim:
            if not vector_index_exists(conn):
                create_vector_index(conn)
            return False
        has_rows = conn.execute("SELECT EXISTS (SELECT 1 FROM smart_search)").fetchone()[0]
        if has_rows and not reembed:
            raise DatabaseError(
                f"the database holds {current_dim}-d embeddings from model {current!r}, but the active model is "
                f"{model!r} ({dim}-d). Run `photosearch models use {model} --reembed` to re-embed every photo, "
                f"or set PHOTOSEARCH_MODEL_NAME={current} to keep using the old model."
            )
        _set_dimension(conn, model, dim)
        conn.execute("UPDATE assets SET indexed_at = NULL")
        return True
