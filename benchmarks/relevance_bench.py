"""Relevance cutoff ("relevant only"): precision and recall on the synthetic library, where each event's photos
are the true relevant set of a query built from the event (its photos' mean direction plus noise: 0 = a query
that describes the event exactly, 0.5 = loosely). Runs `search.relevance.cutoff` on exact scores in numpy — the
same ranked scores the search service hands it (tests/search/test_relevance.py runs it through the service).
Prints a table, writes benchmarks/results/relevance_bench.json.

    python benchmarks/relevance_bench.py [--photos 50000] [--queries 200]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from photosearch.search.relevance import RELEVANT_MAX, cutoff
from photosearch.search.synthetic import make_library, normalise

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=50_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--event-size", type=int, default=60)
    args = ap.parse_args()
    lib = make_library(args.photos, args.dim, seed=3, event_size=args.event_size)
    emb, event_of = lib.embeddings, lib.extra["event_of"]
    rng = np.random.default_rng(0)
    events = rng.choice(np.unique(event_of), min(args.queries, len(np.unique(event_of))), replace=False)
    rows = []
    for noise in (0.0, 0.3, 0.5):
        p, r = [], []
        for e in events:
            members = event_of == e
            q = normalise(emb[members].mean(0) + noise * normalise(rng.standard_normal(args.dim)))
            scores = emb @ q
            ranked = np.sort(scores)[::-1][:RELEVANT_MAX]
            background = scores[rng.integers(0, len(scores), 1000)]
            cut, _ = cutoff(ranked, background)
            got = scores >= cut
            tp = int((got & members).sum())
            p.append(tp / max(int(got.sum()), 1))
            r.append(tp / int(members.sum()))
        row = {"noise": noise, "queries": len(events), "precision": float(np.mean(p)), "recall": float(np.mean(r))}
        row.update(precision_p10=float(np.percentile(p, 10)), recall_p10=float(np.percentile(r, 10)))
        rows.append(row)
    print(f"{args.photos} photos ({args.dim}-d), events of ~{args.event_size}; {len(events)} queries per row")
    print(f"{'noise':>5} {'precision':>10} {'recall':>7} {'P p10':>6} {'R p10':>6}")
    for row in rows:
        print(f"{row['noise']:>5} {row['precision']:>10.3f} {row['recall']:>7.3f} {row['precision_p10']:>6.2f}"
              f" {row['recall_p10']:>6.2f}")  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "relevance_bench.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
