"""The CLI shell: `libraries scan`, `index` choosing the library that holds a folder, `errors`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .conftest import copy_photos


def _cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "photosearch", *args], env=env, capture_output=True, text=True)


def test_libraries_scan_index_and_errors(cli_env, photos_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "pics"
    copy_photos(photos_dir, root / "a", ["cyclamen_persicum.jpg"])
    copy_photos(photos_dir, root / "b", ["notocactus_minimus.jpg"])
    (root / "b" / "broken.jpg").write_text("not a photo")
    assert _cli(cli_env, "libraries", "add", "mine", str(root)).returncode == 0

    r = _cli(cli_env, "--json", "libraries", "scan", "mine")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert (s["library"], s["seen"], s["new"], s["errors"], s["error_reasons"]) == (
        "mine",
        3,
        2,
        1,
        {"not an image": 1},
    )

    # a sub-folder of the library's root: indexed into that library, swept only under that folder
    (root / "a" / "cyclamen_persicum.jpg").unlink()
    r = _cli(cli_env, "--json", "index", str(root / "a"))
    s = json.loads(r.stdout)
    assert (s["library"], s["seen"], s["offline"]) == ("mine", 0, 1)

    r = _cli(cli_env, "--json", "errors", "--library", "mine")
    (err,) = json.loads(r.stdout)
    assert err["path"] == str(root / "b" / "broken.jpg") and err["reason"] == "not an image"

    r = _cli(cli_env, "index", str(tmp_path / "nope"))
    assert r.returncode == 1 and "is not a directory" in r.stderr
