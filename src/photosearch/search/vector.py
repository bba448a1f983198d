"""The vector a query searches with: the CLIP text or image tower's, a stored asset's, or the one given; with
words added and taken away (search/arithmetic.py); unit length."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import numpy as np
import psycopg

from photosearch.db import search as sq
from photosearch.search.arithmetic import combine, text_vector
from photosearch.search.arithmetic import parse as parse_terms
from photosearch.search.query import SearchError, SearchQuery

NEGATIVE_WEIGHT = 0.5


def query_vector(
    model_of: Callable[[], Any], conn: psycopg.Connection, query: SearchQuery, scope: list[UUID] | None
) -> tuple[np.ndarray, UUID | None]:
    """The vector to search with (unit length), and the asset to exclude (for "more like this"). The caller
    checks its dimension against the stored embeddings."""
    exclude = None
    if query.text is not None:
        model = model_of()
        try:  # plain, or arithmetic: "beach" + "sunset" - "people"
            vec = text_vector(model.encode_text, query.text)
        except ValueError as exc:
            raise SearchError(str(exc)) from exc
        if query.negative_text:
            vec = vec - NEGATIVE_WEIGHT * np.asarray(model.encode_text(query.negative_text), dtype=np.float32)
    elif query.image_embedding is not None:
        vec = np.asarray(query.image_embedding, dtype=np.float32)
    elif query.image_path is not None or query.image_bytes is not None:
        model = model_of()
        if query.image_path is not None:
            if not query.image_path.is_file():
                raise SearchError(f"no image file at {query.image_path}")
            source: Any = query.image_path
        else:
            source = query.image_bytes
        try:
            img = model.preprocessor.load_image(source)
        except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad input image
            raise SearchError(f"cannot read the query image: {exc}") from exc
        vec = np.asarray(model.encode_images([img])[0], dtype=np.float32)
    elif query.like_asset_id is not None:
        found = sq.asset_embedding(conn, query.like_asset_id)
        if found is None or (scope is not None and found[0] not in scope):
            owner = sq.asset_exists(conn, query.like_asset_id)
            if owner is not None and (scope is None or owner in scope):
                raise SearchError(f"asset {query.like_asset_id} has no embedding yet (run the indexer)")
            raise SearchError(f"no asset {query.like_asset_id}")
        vec, exclude = found[1], query.like_asset_id
    else:
        vec = np.asarray(query.vector, dtype=np.float32)
    if query.add_text or query.subtract_text:
        vec = _with_terms(model_of, vec, query)
    if vec.ndim != 1:
        raise SearchError("the query vector must be one-dimensional")
    if not np.all(np.isfinite(vec)):
        raise SearchError("the query vector contains NaN or infinite values")
    norm = float(np.linalg.norm(vec))
    if norm == 0.0:
        raise SearchError("the query vector is all zeros")
    return (vec / norm).astype(np.float32), exclude


def _with_terms(model_of: Callable[[], Any], vec: np.ndarray, query: SearchQuery) -> np.ndarray:
    """The query's vector plus add_text, minus subtract_text (search/arithmetic.py)."""
    encode = model_of().encode_text
    parts = [(1.0, vec)]
    for sign, terms in ((1.0, query.add_text or []), (-1.0, query.subtract_text or [])):
        for raw in terms:
            parts += [(sign * t.weight, encode(t.text)) for t in parse_terms(raw)]
    try:
        return combine(parts)
    except ValueError as exc:
        raise SearchError(str(exc)) from exc
