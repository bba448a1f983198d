"""One search box: how well it answers queries that name a file, a city or a camera, and what understanding costs.

Part 1 (numpy, the synthetic library): the fusion of text matches with CLIP. File-name queries name a prefix
shared by 10 photos (IMG_000012 -> IMG_0000120..129) or one whole name, with a CLIP vector unrelated to the name
(a query that is only a name); precision@10 / hit@1 of the tiered boost (search/hybrid.py: text matches first)
against reciprocal-rank fusion (k=60) of the same two lists.

Part 2 (the search service on an embedded PostgreSQL, tiny test model's text tower, 32-d): queries naming a city
("a dog in Kyoto"), a camera model ("sunset iPhone 13") and a file name: precision@k of the understood search
(the share of hits of that city / camera; the named file first) against plain CLIP, completeness (rows =
min(k, matches)), and latency p50/p95 of understood vs plain over the same queries, ratio in one run.

    python benchmarks/hybrid_bench.py [--photos 20000] [--queries 60] [--data-dir /tmp/photosearch-hybrid-bench]

Prints tables, writes benchmarks/results/hybrid_bench.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import psycopg
from psycopg import sql

from photosearch.config import Settings
from photosearch.db.accounts import create_user
from photosearch.db.embedding import create_vector_index, drop_vector_index, ensure_embedding_model
from photosearch.db.migrate import migrate
from photosearch.db.pool import check_pgvector, connect_pool
from photosearch.db.search_synthetic import bulk_insert_synthetic
from photosearch.db.server import ServerInfo, start_embedded, stop_embedded, with_dbname
from photosearch.models import load_clip
from photosearch.search import SearchQuery, SearchService
from photosearch.search.synthetic import CAMERAS, CITIES, make_library, make_queries

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
TINY = ROOT / "tests" / "fixtures" / "tiny-clip"
RRF_K = 60


def fusion(photos: int, queries: int) -> list[dict]:
    """Part 1: boost vs RRF on file-name queries, in numpy."""
    lib = make_library(photos, 64, seed=5)
    qs = make_queries(lib, queries, seed=2)
    names = np.array([f.rsplit(".", 1)[0].lower() for f in lib.file_names])
    rng = np.random.default_rng(4)
    rows = []
    for label, width in (("prefix of 10 names", 9), ("one whole name", 11)):
        p_boost, p_rrf = [], []
        for q in qs:
            i = int(rng.integers(0, len(lib) // 10)) * 10
            prefix = names[i][:width]
            match = np.char.startswith(names, prefix)
            d = 1.0 - lib.embeddings @ q
            clip = np.argsort(d, kind="stable")
            lexical = np.nonzero(match)[0][np.argsort(d[match], kind="stable")]
            boost = np.concatenate([lexical, clip[~match[clip]]])[:10]
            score = np.zeros(len(lib))
            score[clip[:1000]] += 1.0 / (RRF_K + 1 + np.arange(1000))
            score[lexical] += 1.0 / (RRF_K + 1 + np.arange(len(lexical))) + 1e-9  # ties go to the text match
            rrf = np.argsort(-score, kind="stable")[:10]
            want = min(10, int(match.sum()))
            for got, out in ((boost, p_boost), (rrf, p_rrf)):
                out.append(float(match[got[:want]].mean()))
        rows.append({"queries": label, "boost": float(np.mean(p_boost)), "rrf": float(np.mean(p_rrf))})
    return rows


def _database(data_dir: Path, photos: int, model) -> tuple:
    admin_dsn = start_embedded(data_dir / "pgdata")
    name = f"hybrid_{photos}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        fresh = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None
        if fresh:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = with_dbname(admin_dsn, name)
    lib = make_library(photos, 32, seed=11)
    check_pgvector(dsn)
    migrate(dsn)  # a database of an earlier run gets any newer migration
    db = connect_pool(ServerInfo(dsn=dsn, embedded=False, pgdata=None), max_size=2)
    if fresh:
        ensure_embedding_model(db, "tiny-clip", 32)
        with db.connection() as conn:
            drop_vector_index(conn)
            bulk_insert_synthetic(conn, lib)
            create_vector_index(conn)
            conn.execute("ANALYZE")
            conn.commit()
        create_user(db, "bench", "bench@example.org", is_admin=True)
    with db.connection() as conn:
        admin = conn.execute("SELECT id, is_admin FROM users WHERE email = 'bench@example.org'").fetchone()
    return db, lib, {"id": admin[0], "is_admin": True}


def names_ms(db, repeats: int = 20) -> float:
    """Looking a query's words up among the names of the library (places, cameras, folders): median ms."""
    from photosearch.search.understand import names_in_scope

    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        with db.connection() as conn:
            names_in_scope(conn, None, "a dog on the beach in New York at sunset, shot on a Nikon, kyoto-2019")
        times.append((time.perf_counter() - t) * 1000)
    return float(np.median(times))


def service_rows(db, lib, user, model, n: int, k: int) -> list[dict]:
    """Part 2: per kind of query, precision and completeness of understood vs plain, and latency of both."""
    service = SearchService(db, lambda: model)
    rng = np.random.default_rng(8)
    cities = [c for c in np.unique(lib.city) if c >= 0]
    cams = [c for c in np.unique(lib.camera) if c >= 0]
    live = np.nonzero(~lib.deleted & ~lib.is_archived)[0]
    kinds = {
        "city": [(f"a dog in {CITIES[c][0]}", lambda h, c=c: h.city == CITIES[c][0]) for c in rng.choice(cities, n)],
        "camera": [(f"sunset {CAMERAS[c][1]}", lambda h, c=c: h.model == CAMERAS[c][1]) for c in rng.choice(cams, n)],
        "file name": [
            (lib.file_names[i].rsplit(".", 1)[0], lambda h, i=i: h.id == lib.ids[i]) for i in rng.choice(live, n)
        ],
    }
    rows = []
    for kind, qs in kinds.items():
        res: dict[str, dict[str, list]] = {m: {"p": [], "ms": [], "full": []} for m in ("plain", "understood")}
        for text, right in qs:
            for mode in ("plain", "understood"):
                t = time.perf_counter()
                page = service.search(SearchQuery(text=text, k=k, understand=mode == "understood"), user)
                res[mode]["ms"].append((time.perf_counter() - t) * 1000)
                hits = page.items[:1] if kind == "file name" else page.items
                res[mode]["p"].append(np.mean([right(h) for h in hits]) if hits else 0.0)
                res[mode]["full"].append(len(page.items) == k)
        row = {"queries": kind, "n": len(qs)}
        for mode, r in res.items():
            row[f"{mode}_precision"] = float(np.mean(r["p"]))
            row[f"{mode}_full_pages"] = float(np.mean(r["full"]))
            row[f"{mode}_p50_ms"] = float(np.percentile(r["ms"], 50))
            row[f"{mode}_p95_ms"] = float(np.percentile(r["ms"], 95))
        row["overhead_p50"] = row["understood_p50_ms"] / row["plain_p50_ms"]
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=20_000)
    ap.add_argument("--queries", type=int, default=60)
    ap.add_argument("-k", type=int, default=20)
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/photosearch-hybrid-bench"))
    args = ap.parse_args()
    fused = fusion(args.photos, args.queries)
    print(f"fusion of file-name matches with CLIP, {args.photos} photos, {args.queries} queries per row")
    print(f"{'queries':<20} {'boost P@10':>10} {'RRF P@10':>9}")
    for r in fused:
        print(f"{r['queries']:<20} {r['boost']:>10.3f} {r['rrf']:>9.3f}")
    model = load_clip(Settings(models_dir=TINY.parent, model_name=TINY.name, threads=1))
    db, lib, user = _database(args.data_dir, args.photos, model)
    try:
        served = service_rows(db, lib, user, model, args.queries, args.k)
        cold = names_ms(db)
    finally:
        db.close()
        stop_embedded(args.data_dir / "pgdata")
    print(f"\nthe search service, {args.photos} photos, k={args.k} (precision: file name = named file first)")
    head = ["queries", "plain P", "underst. P", "full pages", "plain p50", "underst. p50", "p95", "ratio p50"]
    print(" ".join(f"{h:>12}" for h in head))
    for r in served:
        cells = [r["queries"], f"{r['plain_precision']:.3f}", f"{r['understood_precision']:.3f}",
                 f"{r['understood_full_pages']:.2f}", f"{r['plain_p50_ms']:.1f} ms", f"{r['understood_p50_ms']:.1f} ms",
                 f"{r['understood_p95_ms']:.1f} ms", f"{r['overhead_p50']:.2f}x"]  # fmt: skip
        print(" ".join(f"{c:>12}" for c in cells))
    print(f"looking a 14-word query's words up among the library's names: {cold:.2f} ms (median)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {"args": {k: str(v) for k, v in vars(args).items()}, "fusion": fused, "service": served}
    out["names_lookup_ms"] = cold
    (RESULTS / "hybrid_bench.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
