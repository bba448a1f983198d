"""Ingest: scan library folders, read metadata, decode once for thumbnails and embeddings, store in Postgres.

`index_library(db, settings, library)` is the one entry point (CLI, API and tests all use it).
"""

from photosearch.ingest.pipeline import IngestError, IngestProgress, IngestSummary, index_library

__all__ = ["IngestError", "IngestProgress", "IngestSummary", "index_library"]
