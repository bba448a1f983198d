"""The API docs work offline: Swagger UI is served from vendored files, never a CDN."""

from __future__ import annotations

from api.live import LiveServer


def test_docs_page_loads_swagger_from_this_server(live: LiveServer) -> None:
    with live.client() as anon:
        page = anon.get("/docs")
        assert page.status_code == 200
        assert "/static/swagger/swagger-ui-bundle.js" in page.text
        assert "cdn" not in page.text.lower() and "https://" not in page.text
        for asset, kind in (("swagger-ui-bundle.js", "javascript"), ("swagger-ui.css", "css")):
            r = anon.get(f"/static/swagger/{asset}")
            assert r.status_code == 200 and kind in r.headers["content-type"] and len(r.content) > 10_000
        spec = anon.get("/openapi.json")
        assert spec.status_code == 200 and "/api/search/smart" in spec.json()["paths"]
