"""One search box, places first: a text query naming a city of the synthetic library (which knows every photo's
city) returns only that city's photos, says so in the plan, and stays complete against a numpy reference."""

from __future__ import annotations

import numpy as np

from photosearch.config import Settings
from photosearch.db import Database
from photosearch.db.accounts import create_user
from photosearch.models import load_clip
from photosearch.search import SearchQuery, SearchService
from photosearch.search.synthetic import CITIES
from photosearch.search.understand import derive_places
from tests.search.reference import reference_mask
from tests.search.test_cli_duplicates import _library


def test_derive_places() -> None:
    names = {"city": ["New York", "Kyoto", "Paris"], "state": ["New York"], "country": ["Japan", "France"]}
    assert derive_places("a dog in kyoto", names) == {"city": "Kyoto"}
    assert derive_places("Night in NEW YORK", names) == {"city": "New York", "state": "New York"}
    assert derive_places("Parisian cafe, Japanese garden", names) == {}  # whole words only
    assert derive_places("temples of Kyoto, Japan", names) == {"city": "Kyoto", "country": "Japan"}


def test_a_city_in_the_text_filters_and_is_explained(db: Database, settings: Settings) -> None:
    lib, _ = _library(db, settings, n=600)
    model = load_clip(settings)
    admin = create_user(db, "root", "root@example.org", is_admin=True)
    service = SearchService(db, lambda: model)
    counts = np.bincount(lib.city[lib.city >= 0], minlength=len(CITIES))
    for c in np.argsort(-counts)[:3]:
        city = CITIES[c][0]
        text = f"a dog in {city.lower()}"
        plain = service.search(SearchQuery(text=text, k=50), admin)
        page = service.search(SearchQuery(text=text, k=50, understand=True), admin)
        assert page.plan.reason.startswith(f'understood: "{city}" as the city')
        assert {h.city for h in page.items} == {city}
        mask = reference_mask(lib, SearchQuery(text=text, k=50, city=city))
        assert len(page.items) == min(50, int(mask.sum()))  # complete with the derived filter
        assert {h.city for h in plain.items} != {city}  # without it, other places rank too
        mine = service.search(SearchQuery(text=text, k=50, understand=True, city="Nowhere"), admin)
        assert mine.items == [] and "as the city" not in mine.plan.reason  # the caller's filter wins
