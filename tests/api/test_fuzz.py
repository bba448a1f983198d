"""Property: no request body or query string, however odd, gets a 500 — bad input is always a 4xx."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.live import LiveServer

FIELDS = [
    "query", "negative_text", "page", "size", "taken_after", "taken_before", "created_after", "updated_before",
    "make", "model", "lens_model", "country", "state", "city", "file_name_contains", "is_favorite", "is_archived",
    "is_offline", "visibility", "with_deleted", "trashed_only", "rating_min", "rating", "has_gps", "bbox", "near",
    "library_ids", "type", "order", "max_distance",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["2020-01-01", "2020-13-45T25:61:00", "' OR 1=1 --", "\x00", "timeline", "IMAGE", "date", "-1"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)  # noqa: E501
bodies = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=10), values, max_size=8)
OK = {200, 400, 404, 413, 422}


SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture]}


def test_smart_search_never_500(live: LiveServer) -> None:
    with live.client(live.alice) as c:

        @settings(max_examples=120, **SETTINGS)
        @given(body=bodies, query=st.text(min_size=1, max_size=30))
        def check(body: dict, query: str) -> None:
            content = json.dumps({"query": query, **body})
            r = c.post("/api/search/smart", content=content, headers={"content-type": "application/json"})
            assert r.status_code in OK, (body, r.status_code, r.text)
            assert r.json().get("message") or r.status_code == 200

        check()


def test_query_strings_never_500(live: LiveServer) -> None:
    paths = ["/api/assets", "/api/assets/{id}/similar", "/api/assets/{id}/thumbnail", "/api/duplicates"]
    with live.client(live.alice) as c:

        @settings(max_examples=60, **SETTINGS)
        @given(
            path=st.sampled_from(paths),
            params=st.dictionaries(
                st.sampled_from(["page", "size", "max_distance", "x"]), st.text(max_size=12), max_size=3
            ),
        )
        def check(path: str, params: dict) -> None:
            r = c.get(path.format(id=live.alice.assets[0]["id"]), params=params)
            assert r.status_code in OK, (path, params, r.status_code, r.text[:200])

        check()


def test_image_search_form_fields_never_500(live: LiveServer) -> None:
    photo = (live.alice.root / "density_plot.png").read_bytes()
    with live.client(live.alice) as c:

        @settings(max_examples=30, **SETTINGS)
        @given(filters=st.one_of(st.text(max_size=60), bodies.map(json.dumps)), page=st.text(max_size=6))
        def check(filters: str, page: str) -> None:
            r = c.post("/api/search/image", files={"file": ("q.png", photo)}, data={"filters": filters, "page": page})
            assert r.status_code in OK, (filters, page, r.status_code, r.text[:200])

        check()
