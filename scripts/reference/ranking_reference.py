#!/usr/bin/env python3
"""Ranking metrics of a saved regulab MF model, computed independently of regulab.

Reads the .safetensors file itself (header, metadata and float32 tensors, with numpy), the
ml-100k official split's uN.base (the training ratings) and uN.test (the evaluated ones),
and computes precision@K, recall@K, ndcg@K and hit@K as docs/commands.md defines them, for
the model and for the most-popular ranking:

* relevant: a user's test ratings >= --relevance; users without one are left out;
* candidates: every item row of the model minus the items the user rated in uN.base;
* ranking: score descending, ties to the smaller raw item id (a full stable sort here,
  where regulab partially sorts);
* scores in float64: mu + b_u + b_i + p_u.q_i, the factor term only where both user and
  item rows trained (as regulab predicts); most popular: the item's count in uN.base.

Prints a JSON object: {"users", "users_without_relevant", "model": {...}, "most_popular": {...}}.
"""

import argparse
import json
import math
import struct
import sys
from pathlib import Path

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64}


def read_safetensors(path):
    data = Path(path).read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    metadata = json.loads(header.pop("__metadata__")["regulab.model"])
    body = data[8 + length :]
    tensors = {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        array = np.frombuffer(body[start:end], dtype=DTYPES[info["dtype"]])
        tensors[name] = array.reshape(info["shape"])
    return tensors, metadata


def read_ratings(path):
    rows = []
    for line in Path(path).read_text().splitlines():
        if line.strip():
            user, item, rating = line.split("\t")[:3]
            rows.append((int(user), int(item), float(rating)))
    return rows


def parse_metric(text):
    family, k = text.split("@")
    return family, int(k)


def rank_metrics(scores_of, users, relevant, seen, item_ids, metrics):
    """Means over users; scores_of(user) gives float64 scores per item row."""
    ks = sorted({k for _, k in metrics})
    sums = {k: dict(precision=0.0, recall=0.0, ndcg=0.0, hit=0.0) for k in ks}
    raw = np.asarray(item_ids, dtype=np.int64)
    for user in users:
        scores = scores_of(user)
        rows = np.array([i for i in range(len(item_ids)) if i not in seen.get(user, set())], dtype=np.int64)
        # lexsort: last key first; score descending, then raw id ascending.
        order = rows[np.lexsort((raw[rows], -scores[rows]))]
        rel = relevant[user]
        for k in ks:
            top = order[:k]
            hits = [rank for rank, item in enumerate(top, start=1) if item in rel]
            dcg = sum(1.0 / math.log2(rank + 1) for rank in hits)
            idcg = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(k, len(rel)) + 1))
            s = sums[k]
            s["precision"] += len(hits) / k
            s["recall"] += len(hits) / len(rel)
            s["ndcg"] += dcg / idcg
            s["hit"] += 1.0 if hits else 0.0
    n = len(users)
    return {f"{family}@{k}": sums[k][family] / n for family, k in metrics}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="RUN.final.safetensors")
    parser.add_argument("--data", required=True, help="the ml-100k directory")
    parser.add_argument("--split", required=True, help="u1..u5, ua, ub")
    parser.add_argument("--metrics", default="precision@10,recall@10,ndcg@10,hit@10")
    parser.add_argument("--relevance", type=float, default=4.0)
    args = parser.parse_args()

    tensors, meta = read_safetensors(args.model)
    ids = meta["ids"]
    user_row = {raw: row for row, raw in enumerate(ids["users"])}
    item_row = {raw: row for row, raw in enumerate(ids["items"])}
    user_trained = np.ones(len(ids["users"]))
    user_trained[ids.get("untrained_users", [])] = 0.0
    item_trained = np.ones(len(ids["items"]))
    item_trained[ids.get("untrained_items", [])] = 0.0

    base = read_ratings(Path(args.data) / f"{args.split}.base")
    test = read_ratings(Path(args.data) / f"{args.split}.test")
    seen, popularity = {}, np.zeros(len(ids["items"]))
    for user, item, _ in base:
        seen.setdefault(user_row[user], set()).add(item_row[item])
        popularity[item_row[item]] += 1.0
    relevant, evaluated = {}, set()
    for user, item, rating in test:
        evaluated.add(user_row[user])
        if rating >= args.relevance:
            relevant.setdefault(user_row[user], set()).add(item_row[item])
    users = sorted(relevant)

    p = tensors["user_factors"].astype(np.float64) * user_trained[:, None]
    q = tensors["item_factors"].astype(np.float64) * item_trained[:, None]
    factor = p @ q.T
    if "user_bias" in tensors:
        mean = float(np.float32(meta["constants"]["global_mean"]))
        ub = tensors["user_bias"].astype(np.float64)
        ib = tensors["item_bias"].astype(np.float64)
        model_scores = lambda u: factor[u] + ub[u] + ib + mean  # noqa: E731
    else:
        model_scores = lambda u: factor[u]  # noqa: E731

    metrics = [parse_metric(m) for m in args.metrics.split(",")]
    result = {
        "users": len(users),
        "users_without_relevant": len(evaluated) - len(users),
        "model": rank_metrics(model_scores, users, relevant, seen, ids["items"], metrics),
        "most_popular": rank_metrics(lambda u: popularity, users, relevant, seen, ids["items"], metrics),
    }
    json.dump(result, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
