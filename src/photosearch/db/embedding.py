"""SQL for the embedding column and its vector index: dimension follows the active model.

A database holds embeddings of exactly one model. Switching to another model is an explicit
re-embed (`photosearch models use NAME --reembed`), never a silent mix of incompatible vectors.

The HNSW index is over the full-precision `vector` column, or (index type "halfvec", chosen per installation
and recorded in system_metadata so every process agrees) over the expression `embedding::halfvec(dim)`:
half the memory, and the stored vectors stay full precision for exact search and re-ranking.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal, get_args

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

IndexType = Literal["vector", "halfvec"]
INDEX_TYPES: tuple[str, ...] = get_args(IndexType)
_OPCLASS = {"vector": "vector_cosine_ops", "halfvec": "halfvec_cosine_ops"}


def get_embedding_model(conn: psycopg.Connection) -> tuple[str, int]:
    row = conn.execute("SELECT value FROM system_metadata WHERE key = 'embedding'").fetchone()
    if row is None:
        raise DatabaseError("schema is missing the embedding settings; run `photosearch db migrate`")
    return row[0]["model"], int(row[0]["dim"])


def get_vector_index_type(conn: psycopg.Connection) -> tuple[str, int]:
    """(index type, dimension) recorded for this installation; "vector" when never set (migration 005)."""
    row = conn.execute(
        "SELECT coalesce(value->>'index_type', 'vector'), (value->>'dim')::int FROM system_metadata"
        " WHERE key = 'embedding'"
    ).fetchone()
    if row is None:
        raise DatabaseError("schema is missing the embedding settings; run `photosearch db migrate`")
    return _checked(row[0]), int(row[1])


def _checked(index_type: str) -> str:
    if index_type not in INDEX_TYPES:
        raise DatabaseError(f"unknown vector index type {index_type!r}; expected one of {', '.join(INDEX_TYPES)}")
    return index_type


def hnsw_order(index_type: str, dim: int, column: str = "s.embedding", param: str = "%(q)s") -> sql.Composable:
    """The ORDER BY expression the HNSW index serves: it must be the index's own expression, or PostgreSQL
    sorts the whole table instead. `column`/`param` are SQL fragments written in our code, never user input."""
    if _checked(index_type) == "halfvec":
        return sql.SQL("({c})::halfvec({d}) <=> ({p})::halfvec({d})").format(
            c=sql.SQL(column), p=sql.SQL(param), d=sql.Literal(int(dim))
        )
    return sql.SQL("{} <=> {}").format(sql.SQL(column), sql.SQL(param))


def vector_index_exists(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (VECTOR_INDEX,)).fetchone()
    return bool(row and row[0])


def keep_embeddings_inline(conn: psycopg.Connection) -> None:
    """STORAGE PLAIN: exact search reads vectors from the heap, never through TOAST (migration 010).

    `ALTER COLUMN ... TYPE` resets the storage to the type's default, so this follows every dimension change.
    """
    conn.execute("ALTER TABLE smart_search ALTER COLUMN embedding SET STORAGE PLAIN")


def built_index_type(conn: psycopg.Connection) -> str | None:
    """The type of the HNSW index as it exists in the catalog (None: no index)."""
    row = conn.execute("SELECT pg_get_indexdef(to_regclass(%s))", (VECTOR_INDEX,)).fetchone()
    if not row or row[0] is None:
        return None
    return "halfvec" if "halfvec_cosine_ops" in row[0] else "vector"


def _index_sql(name: str, index_type: str, dim: int, *, if_not_exists: bool = True) -> sql.Composable:
    column = sql.SQL("embedding")
    if _checked(index_type) == "halfvec":
        column = sql.SQL("(embedding::halfvec({}))").format(sql.Literal(int(dim)))
    return sql.SQL(
        "CREATE INDEX {ine} {name} ON smart_search USING hnsw ({column} {ops}) WITH (m = {m}, ef_construction = {efc})"
    ).format(
        ine=sql.SQL("IF NOT EXISTS" if if_not_exists else ""),
        name=sql.Identifier(name),
        column=column,
        ops=sql.SQL(_OPCLASS[index_type]),
        m=sql.Literal(HNSW_M),
        efc=sql.Literal(HNSW_EF_CONSTRUCTION),
    )


def create_vector_index(conn: psycopg.Connection) -> None:
    """HNSW on cosine distance, of this installation's index type. Built after a bulk load (much faster than
    growing it row by row)."""
    keep_embeddings_inline(conn)
    index_type, dim = get_vector_index_type(conn)
    conn.execute(_index_sql(VECTOR_INDEX, index_type, dim))


def set_vector_index_type(
    conn: psycopg.Connection, index_type: str, on_built: Callable[[], None] | None = None
) -> bool:
    """Record `index_type` for this installation and rebuild the index if it exists as another type.
    Returns True when the index was rebuilt. Call inside a transaction. With no index (a new database, or a
    bulk ingest that dropped it), only the choice is recorded: the next `create_vector_index` follows it.

    The new index is built beside the old one and swapped in at the end, so searches keep using the old
    index during the build (minutes at 1M rows; writers wait) and a failed build leaves everything as it was.
    `on_built` runs between the build and the swap (progress reporting).
    """
    _checked(index_type)
    conn.execute("LOCK TABLE smart_search IN SHARE MODE")  # no writes while the index is rebuilt
    _, dim = get_vector_index_type(conn)
    conn.execute(
        "UPDATE system_metadata SET value = value || jsonb_build_object('index_type', %s::text)"
        " WHERE key = 'embedding'",
        (index_type,),
    )
    built = built_index_type(conn)
    if built is None or built == index_type:
        return False
    swap = VECTOR_INDEX + "_new"  # no keep_embeddings_inline here: its ALTER TABLE would block every search
    conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(swap)))
    conn.execute(_index_sql(swap, index_type, dim, if_not_exists=False))
    if on_built is not None:
        on_built()
    drop_vector_index(conn)
    conn.execute(sql.SQL("ALTER INDEX {} RENAME TO {}").format(sql.Identifier(swap), sql.Identifier(VECTOR_INDEX)))
    return True


def adopt_index_type_on_create(dsn: str, applied_versions: list[int], index_type: str) -> bool:
    """A database created by this migration run (001 applied) takes the configured index type (setting
    `vector_index_type`). An existing database keeps its own: changing it is the explicit, rebuilding
    `photosearch db vector-index`. Returns True when the setting was recorded."""
    if 1 not in applied_versions:
        return False
    with psycopg.connect(dsn) as conn:
        set_vector_index_type(conn, index_type)  # no index exists yet: records only
    return True


def vector_index_status(db: Database) -> dict:
    """The recorded index type, the index as built (type, size) and the embeddings it covers."""
    with db.connection() as conn:
        recorded, dim = get_vector_index_type(conn)
        built = built_index_type(conn)
        size, rows = conn.execute(
            "SELECT pg_relation_size(to_regclass(%s)), (SELECT count(*) FROM smart_search)", (VECTOR_INDEX,)
        ).fetchone()
    return {
        "index_type": recorded,
        "built_as": built,
        "index_size_mb": round(size / 2**20, 1) if size is not None else None,
        "dim": dim,
        "embeddings": rows,
    }


def change_vector_index_type(db: Database, index_type: str, on_built: Callable[[], None] | None = None) -> dict:
    """`set_vector_index_type` in its own transaction, with what happened (for the CLI)."""
    t0 = time.perf_counter()
    with db.connection() as conn, conn.transaction():
        before = built_index_type(conn)
        previous, dim = get_vector_index_type(conn)
        rebuilt = set_vector_index_type(conn, index_type, on_built)
    return {
        "index_type": index_type,
        "previous": previous,
        "previous_index": before,
        "rebuilt": rebuilt,
        "dim": dim,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def drop_vector_index(conn: psycopg.Connection) -> None:
    conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(VECTOR_INDEX)))


def _set_dimension(conn: psycopg.Connection, model: str, dim: int) -> None:
    drop_vector_index(conn)
    # search_ivf and the trained lists (migration 013) hold the old model's vectors and centroids.
    conn.execute("TRUNCATE search_ivf, smart_search, search_centroids")
    conn.execute("DELETE FROM system_metadata WHERE key = 'search_lists'")
    conn.execute(sql.SQL("ALTER TABLE smart_search ALTER COLUMN embedding TYPE vector({})").format(sql.Literal(dim)))
    conn.execute(
        "UPDATE system_metadata SET value = value || jsonb_build_object('model', %s::text, 'dim', %s::int)"
        " WHERE key = 'embedding'",
        (model, dim),
    )
    create_vector_index(conn)  # of the recorded index type: a model switch keeps it


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
