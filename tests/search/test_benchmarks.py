"""The search benchmark and the A/B tool run end to end on a small library (their own embedded server), so the
commands the README gives keep working; the numbers they print are not asserted, the product's promises are."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture
def bench_dir(server_data_dir: Path) -> Path:
    return server_data_dir


def test_search_bench_and_ab_run_end_to_end(bench_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    common = ("--rows", "3000", "--queries", "5", "--data-dir", bench_dir)
    res = _run("benchmarks/search_bench.py", *common, "--warmup", "2", "--results-dir", out, "--tag", "_smoke")
    assert res.returncode == 0, res.stderr[-3000:]
    results = json.loads((out / "search_3000_smoke.json").read_text())
    assert (out / "search_3000_smoke.png").stat().st_size > 10_000
    assert len(results["levels"]) >= 10
    for level in results["levels"]:
        assert set(level["methods"]) == {"photosearch", "pgvector default", "pgvector iterative", "exact"}
        ours = level["methods"]["photosearch"]
        assert ours["completeness"] == 1.0 and ours["recall"] >= 0.98, level
    assert "| seed: owner != Allen, k=64 |" in res.stdout

    res = _run("benchmarks/search_ab.py", "HEAD", *common, "--only", "none (100%)|owner Beth (~1%)", "--rounds", "1")
    assert res.returncode == 0, res.stderr[-3000:]
    lines = [line for line in res.stdout.splitlines() if line.startswith(("none (100%)", "owner Beth"))]
    assert len(lines) == 2 and all(" ms " in line for line in lines), res.stdout
