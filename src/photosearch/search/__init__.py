"""Semantic search: `SearchQuery` in, `SearchPage` out, complete at every filter selectivity."""

from photosearch.search.planner import PlannerConfig, QueryPlan
from photosearch.search.query import SearchError, SearchQuery
from photosearch.search.service import SearchHit, SearchPage, SearchService

__all__ = ["PlannerConfig", "QueryPlan", "SearchError", "SearchHit", "SearchPage", "SearchQuery", "SearchService"]
