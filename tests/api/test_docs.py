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


def test_openapi_declares_api_key_and_cookie_auth_and_lists_each_route_once(live: LiveServer) -> None:
    with live.client() as anon:
        spec = anon.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["ApiKey"] == schemes["ApiKey"] | {"type": "apiKey", "in": "header", "name": "x-api-key"}
    assert schemes["Session"]["in"] == "cookie"
    ops = [(m, p, op) for p, ops in spec["paths"].items() for m, op in ops.items()]
    assert spec["paths"]["/api/search/smart"]["post"]["security"] == [{"ApiKey": []}, {"Session": []}]
    assert "security" not in spec["paths"]["/api/health"]["get"]
    # Swagger lists an operation once per tag: every operation has exactly one.
    assert all(len(op.get("tags", [])) == 1 for _, _, op in ops), [(m, p) for m, p, op in ops if len(op["tags"]) != 1]
    assert spec["paths"]["/api/users/me"]["get"]["tags"] == ["users"]
