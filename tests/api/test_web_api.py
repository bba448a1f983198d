"""The endpoints behind the web app: timeline cursors and month buckets, bulk actions, the trash, the
streamed zip download and uploads. Each checked against the database or the files themselves."""

from __future__ import annotations

import io
import uuid
import zipfile
from pathlib import Path

from api.live import LiveServer, Person
from photosearch.api.auth import hash_password
from photosearch.db.accounts import create_api_key, create_user


def fresh_person(live: LiveServer) -> Person:
    """A user with no photos (mutating tests must not disturb alice's and bob's)."""
    tag = uuid.uuid4().hex[:6]
    user = create_user(live.db, f"u{tag}", f"u{tag}@example.org", password_hash=hash_password("pw-" + tag))
    _, key = create_api_key(live.db, user["id"], "tests")
    return Person(user, "pw-" + tag, key, {}, Path("/nonexistent"))


def test_timeline_cursor_walks_every_photo_once(live: LiveServer) -> None:
    with live.client(live.alice) as c:
        seen, cursor = [], None
        while True:
            params = {"size": 3} | ({"cursor": cursor} if cursor else {})
            data = c.get("/api/assets", params=params).json()
            seen += [i["id"] for i in data["items"]]
            cursor = data["next_cursor"]
            if cursor is None:
                break
        assert sorted(seen) == sorted(str(a["id"]) for a in live.alice.assets)
        assert len(seen) == len(set(seen))
        dates = [i["local_date_time"] for i in c.get("/api/assets", params={"size": 200}).json()["items"]]
        assert dates == sorted(dates, reverse=True)
        assert c.get("/api/assets", params={"cursor": "nonsense"}).status_code == 422


def test_buckets_match_the_photos_and_before_jumps(live: LiveServer) -> None:
    with live.client(live.alice) as c:
        items = c.get("/api/assets", params={"size": 200}).json()["items"]
        data = c.get("/api/timeline/buckets").json()
        expected: dict[str, int] = {}
        for i in items:
            expected[i["local_date_time"][:7]] = expected.get(i["local_date_time"][:7], 0) + 1
        assert {b["month"]: b["count"] for b in data["buckets"]} == expected
        assert data["total"] == len(items)
        oldest = data["buckets"][-1]["month"]
        y, m = map(int, oldest.split("-"))
        end = f"{y + m // 12:04d}-{m % 12 + 1:02d}-01T00:00:00Z"
        jumped = c.get("/api/assets", params={"before": end, "size": 200}).json()["items"]
        assert jumped and all(i["local_date_time"][:7] == oldest for i in jumped)
        assert len(jumped) == expected[oldest]
        # Scrolling back up from the jump: the photos just newer, still newest first.
        first = jumped[0]
        newer = c.get(
            "/api/assets", params={"newer_than": f"{first['local_date_time']}|{first['id']}", "size": 2}
        ).json()
        assert [i["id"] for i in newer["items"]] == [i["id"] for i in items[len(items) - len(jumped) - 2 :][:2]]


def test_bulk_trash_restore_and_empty(live: LiveServer) -> None:
    bob = live.bob
    ids = [str(a["id"]) for a in bob.assets[:3]]
    with live.client(bob) as c, live.client(live.alice) as other:
        assert other.post("/api/assets/bulk", json={"ids": ids, "action": "favorite"}).json()["updated"] == 0
        assert c.post("/api/assets/bulk", json={"ids": ids, "action": "favorite"}).json()["updated"] == 3
        assert all(c.get(f"/api/assets/{i}").json()["is_favorite"] for i in ids)
        assert c.post("/api/assets/bulk", json={"ids": ids, "action": "unfavorite"}).json()["updated"] == 3
        assert c.post("/api/assets/bulk", json={"ids": ids[:2], "action": "trash"}).json()["updated"] == 2
        trash = c.get("/api/trash").json()["items"]
        assert sorted(i["id"] for i in trash) == sorted(ids[:2])
        assert all(i["deleted_at"] for i in trash)
        timeline = {i["id"] for i in c.get("/api/assets", params={"size": 200}).json()["items"]}
        assert not timeline & set(ids[:2])
        assert c.post("/api/assets/bulk", json={"ids": ids[:2], "action": "restore"}).json()["updated"] == 2
        assert c.get("/api/trash").json()["items"] == []
        assert c.post("/api/assets/bulk", json={"ids": ids, "action": "explode"}).status_code == 422
        assert c.post("/api/assets/bulk", json={"ids": [], "action": "trash"}).status_code == 422
    with live.login(bob) as (s, _token):  # a cookie without the CSRF header is refused
        assert s.post("/api/assets/bulk", json={"ids": ids, "action": "trash"}).status_code == 403


def test_download_streams_a_zip_of_the_originals(live: LiveServer) -> None:
    alice = live.alice
    picked = alice.assets[:3]
    with live.client(alice) as c:
        r = c.post("/api/assets/download", data={"ids": ",".join(str(a["id"]) for a in picked)})
        assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
        zf = zipfile.ZipFile(io.BytesIO(r.content))
        assert zf.testzip() is None
        by_name = {i.filename: zf.read(i) for i in zf.infolist()}
        for a in picked:
            assert by_name[a["original_file_name"]] == Path(a["original_path"]).read_bytes()
        assert c.post("/api/assets/download", data={"ids": "not-an-id"}).status_code == 422
    with live.client(live.bob) as c:  # someone else's photos: nothing to download
        assert c.post("/api/assets/download", data={"ids": str(picked[0]["id"])}).status_code == 404
    with live.login(alice) as (s, token):
        ids = str(picked[0]["id"])
        assert s.post("/api/assets/download", data={"ids": ids}).status_code == 403
        assert s.post("/api/assets/download", data={"ids": ids, "csrf_token": token}).status_code == 200


def test_upload_indexes_reports_duplicates_and_refuses_broken_files(live: LiveServer) -> None:
    dave = fresh_person(live)
    photo = live.photos / "albums/nature/wood_anemones.jpg"
    with live.client(dave) as c:
        r = c.post("/api/uploads", files={"file": ("../../etc/wood anemones.jpg", photo.read_bytes())})
        assert r.status_code == 201, r.text
        asset = r.json()["asset"]
        stored = Path(asset["original_path"])
        assert stored.read_bytes() == photo.read_bytes()
        assert stored.is_relative_to(live.settings.data_dir / "uploads" / str(dave.user["id"]))
        assert stored.name == "wood anemones.jpg"
        assert c.get("/api/assets").json()["items"][0]["id"] == asset["id"]
        # Indexed: it is found by "more like this" from itself via an image search.
        hits = c.post("/api/search/image", files={"file": ("q.jpg", photo.read_bytes())}).json()["items"]
        assert hits[0]["id"] == asset["id"]
        again = c.post("/api/uploads", files={"file": ("copy.jpg", photo.read_bytes())})
        assert again.status_code == 200 and again.json() == {
            "status": "duplicate",
            "asset_id": asset["id"],
            "in_trash": False,
        }
        files = [p for p in (live.settings.data_dir / "uploads" / str(dave.user["id"])).rglob("*") if p.is_file()]
        assert len(files) == 1
        broken = photo.read_bytes()[:2000]
        r = c.post("/api/uploads", files={"file": ("broken.jpg", broken)})
        assert r.status_code == 422 and "cannot be decoded" in r.json()["message"]
        r = c.post("/api/uploads", files={"file": ("notes.txt", b"hello, not a photo")})
        assert r.status_code == 415
        big = b"\xff\xd8\xff" + b"0" * (3 * 1024 * 1024)
        assert c.post("/api/uploads", files={"file": ("big.jpg", big)}).status_code == 413
        # Trash and empty it: the uploaded file goes too.
        assert c.post("/api/assets/bulk", json={"ids": [asset["id"]], "action": "trash"}).json()["updated"] == 1
        assert c.post("/api/trash/empty").json() == {"deleted": 1, "files_removed": 1}
        assert not stored.exists()
