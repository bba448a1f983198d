"""User A can never read, search or download user B's assets — tried on every endpoint, both ways.

alice is an admin: being an admin gives no access to other people's photos through the API either.
"""

from __future__ import annotations

import json

from api.live import LiveServer, Person


def _ids(items: list[dict]) -> set[str]:
    return {item["id"] for item in items}


def _asset_endpoints(asset_id: str) -> list[str]:
    return [
        f"/api/assets/{asset_id}",
        f"/api/assets/{asset_id}/thumbnail",
        f"/api/assets/{asset_id}/thumbnail?size=preview",
        f"/api/assets/{asset_id}/original",
        f"/api/assets/{asset_id}/similar",
        f"/photos/{asset_id}",
    ]


def _check_no_access(live: LiveServer, me: Person, other: Person) -> None:
    other_ids = {str(a["id"]) for a in other.assets}
    own_ids = {str(a["id"]) for a in me.assets}
    with live.client(me) as c:
        for aid in other_ids:
            for path in _asset_endpoints(aid):
                r = c.get(path)
                assert r.status_code == 404, (me.email, path, r.status_code)
                assert other.library["name"] not in r.text and "original_path" not in r.text
        # The same endpoints work for the caller's own assets (so the 404s above are about ownership).
        mine = next(iter(own_ids))
        for path in _asset_endpoints(mine):
            assert c.get(path, follow_redirects=True).status_code == 200, path

        # Search: similar, by image (the other user's own photo as the query), and by library filter.
        r = c.get(f"/api/assets/{mine}/similar", params={"size": 200})
        assert r.status_code == 200 and _ids(r.json()["items"]) <= own_ids and r.json()["items"]
        query_photo = other.root / other.assets[0]["original_file_name"]
        r = c.post("/api/search/image", files={"file": ("q.jpg", query_photo.read_bytes())}, data={"size": "200"})
        assert r.status_code == 200, r.text
        found = _ids(r.json()["items"])
        assert found and found <= own_ids
        filters = json.dumps({"library_ids": [str(other.library["id"])]})
        r = c.post("/api/search/image", files={"file": ("q.jpg", query_photo.read_bytes())}, data={"filters": filters})
        assert r.status_code == 200 and r.json()["items"] == []
        r = c.get("/api/assets", params={"size": 200})
        assert r.status_code == 200 and _ids(r.json()["items"]) == own_ids
        r = c.post("/api/search/smart", json={"query": "a photo", "size": 200})
        assert r.status_code == 200 and _ids(r.json()["items"]) == own_ids
        r = c.post("/api/search/smart", json={"query": "a photo", "library_ids": [str(other.library["id"])]})
        assert r.status_code == 200 and r.json()["items"] == []
        r = c.post("/api/search/smart", json={"query": "a photo", "is_archived": None, "with_deleted": True})
        assert _ids(r.json()["items"]) <= own_ids
        # Fields that would widen the scope are not part of the API.
        r = c.post("/api/search/smart", json={"query": "x", "owners": [other.email]})
        assert r.status_code == 422
        r = c.post(
            "/api/search/image",
            files={"file": ("q.jpg", query_photo.read_bytes())},
            data={"filters": '{"owners": ["*"]}'},
        )
        assert r.status_code == 422

        # Duplicates only ever group the caller's assets.
        r = c.get("/api/duplicates")
        assert r.status_code == 200
        for group in r.json()["groups"]:
            assert _ids(group["assets"]) <= own_ids


def test_alice_cannot_reach_bobs_assets(live: LiveServer) -> None:
    _check_no_access(live, live.alice, live.bob)


def test_bob_cannot_reach_alices_assets(live: LiveServer) -> None:
    _check_no_access(live, live.bob, live.alice)


def test_libraries_and_jobs_are_scoped(live: LiveServer) -> None:
    with live.client(live.bob) as bob, live.client(live.alice) as alice:
        libs = bob.get("/api/libraries").json()
        assert [lib["name"] for lib in libs] == [live.bob.library["name"]]
        assert libs[0]["assets"] == len(live.bob.assets)
        alice_lib = live.alice.library["id"]
        assert bob.get(f"/api/libraries/{alice_lib}").status_code == 404
        assert bob.post(f"/api/libraries/{alice_lib}/scan").status_code == 404
        # alice's scan job is invisible to bob.
        r = alice.post(f"/api/libraries/{alice_lib}/scan")
        assert r.status_code in (200, 202), r.text
        job_id = r.json()["id"]
        assert bob.get(f"/api/jobs/{job_id}").status_code == 404
        assert job_id not in {j["id"] for j in bob.get("/api/jobs").json()}
        assert alice.get(f"/api/jobs/{job_id}").status_code == 200
        assert live.app.state.ctx.jobs.wait(job_id, 120)["status"] == "succeeded"


def test_me_counts_only_own_assets(live: LiveServer) -> None:
    with live.client(live.bob) as bob:
        me = bob.get("/api/users/me").json()
        assert me["assets"] == len(live.bob.assets) and me["libraries"] == 1


def test_duplicates_find_the_near_copy(live: LiveServer) -> None:
    from api.live import ALICE_PHOTOS, BOB_PHOTOS

    for person, photos in ((live.alice, ALICE_PHOTOS), (live.bob, BOB_PHOTOS)):
        original = photos[0].rsplit("/", 1)[1]
        copy = "copy-of-" + original.rsplit(".", 1)[0] + ".jpg"
        with live.client(person) as c:
            groups = c.get("/api/duplicates").json()["groups"]
            names = [{a["original_file_name"] for a in g["assets"]} for g in groups]
            assert any({original, copy} <= group for group in names), names
            assert c.get("/api/duplicates", params={"max_distance": 3}).status_code == 422


def test_favorite_and_archive_only_by_the_owner(live: LiveServer) -> None:
    asset = str(live.bob.assets[0]["id"])
    with live.client(live.bob) as bob, live.client(live.alice) as alice:
        assert alice.put(f"/api/assets/{asset}", json={"is_favorite": True}).status_code == 404
        assert bob.put(f"/api/assets/{asset}", json={"is_favorite": "yes please"}).status_code == 422
        assert bob.put(f"/api/assets/{asset}", json={"owner_id": str(live.alice.user["id"])}).status_code == 422
        try:
            r = bob.put(f"/api/assets/{asset}", json={"is_favorite": True})
            assert r.status_code == 200 and r.json()["is_favorite"] is True
            favs = bob.post("/api/search/smart", json={"query": "x", "is_favorite": True}).json()["items"]
            assert [i["id"] for i in favs] == [asset]
            assert bob.put(f"/api/assets/{asset}", json={"is_archived": True}).json()["is_archived"] is True
            # Archived photos leave the timeline and the default search, and come back on request.
            assert asset not in {i["id"] for i in bob.get("/api/assets").json()["items"]}
            default = bob.post("/api/search/smart", json={"query": "x", "size": 200}).json()["items"]
            assert asset not in {i["id"] for i in default}
            only = bob.post("/api/search/smart", json={"query": "x", "is_archived": True}).json()["items"]
            assert [i["id"] for i in only] == [asset]
        finally:
            bob.put(f"/api/assets/{asset}", json={"is_favorite": False, "is_archived": False})
    with live.login(live.bob) as (c, csrf):  # with a session cookie, a PUT needs the CSRF token
        assert c.put(f"/api/assets/{asset}", json={"is_favorite": True}).status_code == 403
        r = c.put(f"/api/assets/{asset}", json={"is_favorite": False}, headers={"x-csrf-token": csrf})
        assert r.status_code == 200
