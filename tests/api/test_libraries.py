"""Libraries over the API: admin creates one, a background scan indexes it, progress is visible."""

from __future__ import annotations

import shutil
import time

from api.live import LiveServer
from photosearch.db.accounts import create_api_key, create_user


def test_create_scan_and_poll(live: LiveServer) -> None:
    carol = create_user(live.db, "carol", "carol-api@example.org")
    _, carol_key = create_api_key(live.db, carol["id"], "tests")
    root = live.tmp / "carol-photos"
    root.mkdir()
    for name in ("albums/nature/silver_fir.jpg", "formats/jpeg/el_torcal_rocks.jpeg", "metadata/faces/portrait.jpg"):
        shutil.copy2(live.photos / name, root)
    (root / "notes.txt").write_text("not a photo")
    with live.client(live.alice) as c:
        r = c.post(
            "/api/libraries",
            json={"name": "extra", "import_paths": [str(root)], "owner_id": str(carol["id"])},
        )
        assert r.status_code == 201, r.text
        lib = r.json()
        assert lib["owner_id"] == str(carol["id"]) and lib["assets"] == 0
        assert (
            c.post(
                "/api/libraries",
                json={"name": "extra", "import_paths": [str(root)], "owner_id": str(carol["id"])},
            ).status_code
            == 409
        )
    with live.client() as client:
        client.headers["x-api-key"] = carol_key
        r = client.post(f"/api/libraries/{lib['id']}/scan")
        assert r.status_code in (200, 202) and r.headers["location"] == f"/api/jobs/{r.json()['id']}"
        job_id = r.json()["id"]
        deadline = time.monotonic() + 120
        while (job := client.get(f"/api/jobs/{job_id}").json())["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, job
            time.sleep(0.1)
        assert job["status"] == "succeeded", job
        assert job["summary"]["new"] == 3 and job["finished_at"]
        assert client.get(f"/api/libraries/{lib['id']}").json()["assets"] == 3
        assert client.get("/api/users/me").json()["assets"] == 3
    with live.client(live.alice) as alice:  # admins see every job
        assert job_id in {j["id"] for j in alice.get("/api/jobs").json()}


def test_library_validation(live: LiveServer) -> None:
    with live.client(live.alice) as c:
        for body, words in (
            ({"name": "a", "import_paths": ["relative/dir"]}, "not an absolute path"),
            ({"name": "a", "import_paths": [str(live.tmp / "missing")]}, "not a directory"),
            ({"name": "a", "import_paths": [str(live.alice.root / "prairie_falcon.jpg")]}, "not a directory"),
            ({"name": "a", "import_paths": []}, "import_paths"),
            ({"name": "", "import_paths": ["/tmp"]}, "name"),
            ({"name": "a", "import_paths": ["/tmp"], "owner_id": "00000000-0000-0000-0000-000000000000"}, "no user"),
            ({"name": "a", "import_paths": ["/tmp\u0000/x"]}, "import_paths"),
        ):
            r = c.post("/api/libraries", json=body)
            assert r.status_code == 422, (body, r.status_code, r.text)
            assert words in r.json()["message"], (body, r.json())
        assert c.get("/api/libraries/not-a-uuid").status_code == 422
        assert c.get("/api/libraries/00000000-0000-0000-0000-000000000000").status_code == 404
        assert c.get("/api/jobs/00000000-0000-0000-0000-000000000000").status_code == 404


def test_timeline_pages_newest_first(live: LiveServer) -> None:
    with live.client(live.alice) as c:
        seen, page = [], 1
        while page is not None:
            r = c.get("/api/assets", params={"page": page, "size": 4})
            assert r.status_code == 200
            seen += r.json()["items"]
            page = r.json()["next_page"]
        assert len(seen) == len({i["id"] for i in seen}) == len(live.alice.assets)
        dates = [i["local_date_time"] for i in seen]
        assert dates == sorted(dates, reverse=True)
        assert c.get("/api/assets", params={"size": 0}).status_code == 422
