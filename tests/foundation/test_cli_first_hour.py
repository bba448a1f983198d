"""What a newcomer meets in the first hour, with the real CLI: `models download` fetches the default model, an
`index` without a model writes nothing, sizes read like sizes, `--explain` counts only the filters given, and
the bundled test model (random weights) is named as such wherever results are shown."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from photosearch.config import DEFAULT_MODEL


def run(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "photosearch", *args], env=env, capture_output=True, text=True, timeout=300
    )


def test_download_without_a_name_fetches_the_default_model(cli_env: dict, tmp_path: Path) -> None:
    env = {**cli_env, "PHOTOSEARCH_MODELS_DIR": str(tmp_path / "models")}  # the active model is the test one
    r = run(env, "models", "download")
    # no model hub is reachable here: the attempt names what it tried to fetch
    assert r.returncode == 1 and f"'{DEFAULT_MODEL}'" in r.stderr and f"immich-app/{DEFAULT_MODEL}" in r.stderr
    assert "tiny-clip" not in r.stderr


def test_index_without_a_model_writes_nothing(cli_env: dict, photos_dir: Path, tmp_path: Path) -> None:
    env = {**cli_env, "PHOTOSEARCH_MODELS_DIR": str(tmp_path / "models"), "PHOTOSEARCH_MODEL_NAME": DEFAULT_MODEL}
    r = run(env, "index", str(photos_dir / "albums"))
    assert r.returncode == 1 and "unexpected error" not in r.stderr
    assert DEFAULT_MODEL in r.stderr
    assert json.loads(run(env, "--json", "users", "list").stdout) == []
    assert json.loads(run(env, "--json", "libraries", "list").stdout) == []


def test_sizes_explain_and_the_test_model_note(cli_env: dict, photos_dir: Path) -> None:
    assert run(cli_env, "index", str(photos_dir / "albums" / "nature")).returncode == 0
    status = run(cli_env, "db", "status").stdout
    assert re.search(r"database_size\s*│\s*\d+\.\d (MB|GB|KB)\s", status), status
    assert "0000" not in status

    r = run(cli_env, "search", "a flower", "--explain", "-k", "3")
    assert r.returncode == 0, r.stderr
    assert re.search(r"│ filters\s*│ 0\s", r.stdout), r.stdout  # the default timeline/trash filters are not counted
    r = run(cli_env, "search", "a flower", "--explain", "-k", "3", "--make", "canon", "--favorite")
    assert re.search(r"│ filters\s*│ 2\s", r.stdout), r.stdout

    # the bundled tiny model has random weights and says so: a note over the table, a field in JSON
    r = run(cli_env, "search", "a flower", "-k", "3")
    assert "test model with random weights: rankings are meaningless" in r.stdout
    assert json.loads(run(cli_env, "search", "a flower", "--json").stdout)["test_model"] is True


def test_the_default_port_is_not_immichs(cli_env: dict) -> None:
    from photosearch.config import Settings

    assert Settings.model_fields["port"].default == 2342  # immich listens on 2283; both can run side by side
    assert "2342" in run(cli_env, "serve", "--help").stdout
