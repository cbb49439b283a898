#!/usr/bin/env python3
"""The test cost with the L2 term divided by the evaluation set's size, next to regulab's.

The quadratic-cost question (a sigmoid network a la Nielsen whose L2-regularized cost climbs
while accuracy rises) trains with the L2 term lambda/(2n) * sum ||W||^2, n = the number of
training examples, but its evaluate() adds lambda/(2 * len(data)) * sum ||W||^2 with
len(data) = the size of the evaluation set. This script reads a regulab MLP run trained with
`--penalty l2` (frobenius, divided by n) and recomputes, per epoch and from the recorded
weight norms,

  regulab    test total = test base + lambda/(2 n)      * sum ||W||^2   (what was optimized)
  reported   cost       = test base + lambda/(2 n_eval) * sum ||W||^2   (what the question printed)

where the sum runs over the penalized tensors (weight matrices; biases too when the run
used --penalize-bias) and n_eval is the number of test images used (--eval-size to change).

`regulab explain RUN.json` reports the same two costs (the eval-divisor finding) without
Python; this script draws them.

usage: eval_divisor_cost.py RUN.json -o OUT_PREFIX [--format png,svg] [--eval-size N] [--title T]
writes
  OUT_PREFIX-eval-divisor.*    costs (left) and accuracy (right) per epoch
  OUT_PREFIX-eval-divisor.tsv  the numbers behind the figure
"""

import argparse
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

PROG = "eval_divisor_cost.py"
DPI = 100


class Error(Exception):
    pass


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as e:
        raise Error(f"{path}: cannot read: {e.strerror or e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise Error(f"{path}: not JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("kind") != "regulab-run":
        raise Error(f"{path}: not a regulab run JSON")
    if doc.get("command") != "mlp":
        raise Error(f"{path}: an {doc.get('command')} run; this cost is defined for `regulab mlp` runs")
    reg = doc.get("regularization") or {}
    if reg.get("penalty") != "frobenius" or not reg.get("lambda"):
        raise Error(f"{path}: the run has no L2 penalty (train it with --penalty l2 --lambda L)")
    if reg.get("scale") != "dataset":
        raise Error(f"{path}: the L2 penalty is divided by {reg.get('scale')}, not by the training set size n")
    return doc


def rows_of(doc, eval_size):
    reg = doc["regularization"]
    lam = float(reg["lambda"])
    n = float(reg["divisor"])
    bias = bool(reg.get("penalize_bias"))
    rows = []
    for e in doc.get("epochs") or []:
        test = e.get("test") or {}
        norms = e.get("weight_norms") or {}
        sq = sum(v * v for k, v in norms.items() if isinstance(v, (int, float)) and (bias or not k.endswith("bias")))
        base = test.get("base_loss")
        if base is None or not math.isfinite(sq):
            continue
        reg_n = lam / (2 * n) * sq
        reg_eval = lam / (2 * eval_size) * sq
        recorded = test.get("reg_loss")
        # The norms are stored as f32-derived doubles; a mismatch beyond rounding means the
        # run's penalty is not lambda/(2n) * sum ||W||^2 over these tensors.
        if recorded is not None and abs(recorded - reg_n) > 1e-4 * max(1e-12, abs(recorded)):
            raise Error(
                f"epoch {e.get('epoch')}: lambda/(2n)*sum||W||^2 = {reg_n:.6g} from the weight norms, "
                f"but the run recorded test reg_loss {recorded:.6g}"
            )
        rows.append(
            {
                "epoch": e["epoch"],
                "test_accuracy": test.get("accuracy"),
                "train_accuracy": (e.get("train") or {}).get("accuracy"),
                "sum_sq_weights": sq,
                "test_base": base,
                "reg_n": reg_n,
                "reg_eval": reg_eval,
                "regulab_total": base + reg_n,
                "reported_cost": base + reg_eval,
            }
        )
    if not rows:
        raise Error("the run has no epochs with a test base loss")
    return rows, lam, n


def plot(rows, lam, n, eval_size, prefix, formats, title):
    ep = [r["epoch"] for r in rows]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(9.5, 3.4))
    ax.plot(ep, [r["reported_cost"] for r in rows], "o-", color="C3", ms=3,
            label=f"cost divided by the test set's size: base + λ/(2·{eval_size:g})·Σ‖W‖²")
    ax.plot(ep, [r["regulab_total"] for r in rows], "o-", color="C0", ms=3,
            label=f"regulab test total: base + λ/(2·{n:g})·Σ‖W‖²")
    ax.plot(ep, [r["test_base"] for r in rows], "--", color="C2", label="base (quadratic cost, mean)")
    ax.plot(ep, [r["reg_eval"] for r in rows], ":", color="C3", label=f"L2 term, divisor {eval_size:g}")
    ax.plot(ep, [r["reg_n"] for r in rows], ":", color="C0", label=f"L2 term, divisor n = {n:g}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("test cost")
    ax.set_ylim(bottom=0)
    ax.set_title(f"test cost, λ = {lam:g}", fontsize=9)
    ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=2, frameon=False)
    bx.plot(ep, [r["test_accuracy"] for r in rows], "s-", color="C1", ms=3, label="test accuracy")
    if all(r["train_accuracy"] is not None for r in rows):
        bx.plot(ep, [r["train_accuracy"] for r in rows], "--", color="C1", alpha=0.6, label="train accuracy")
    bx.set_xlabel("epoch")
    bx.set_ylabel("accuracy")
    bx.set_title("accuracy", fontsize=9)
    bx.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=2, frameon=False)
    for a in (ax, bx):
        a.grid(True, alpha=0.3)
        a.tick_params(labelsize=8)
        a.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    written = []
    for fmt in formats:
        path = f"{prefix}-eval-divisor.{fmt}"
        fig.savefig(path, dpi=DPI, bbox_inches="tight")
        written.append(path)
    plt.close(fig)
    return written


def main(argv=None):
    p = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", metavar="RUN.json", help="a `regulab mlp --penalty l2` run document")
    p.add_argument("-o", "--output", required=True, metavar="OUT_PREFIX", help="prefix of the output files")
    p.add_argument("--format", default="png", help="comma-separated figure formats: png, svg, pdf (default png)")
    p.add_argument("--eval-size", type=float, metavar="N",
                   help="the evaluation set's size (default: the number of test images the run used)")
    p.add_argument("--title", help="figure title")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    formats = [f.strip().lower().lstrip(".") for f in args.format.split(",") if f.strip()]
    if not formats or any(f not in ("png", "svg", "pdf") for f in formats):
        p.error("--format: use png, svg or pdf")
    try:
        doc = load(args.run)
        eval_size = args.eval_size
        if eval_size is None:
            eval_size = (doc.get("dataset") or {}).get("test_used")
            if not eval_size:
                raise Error(f"{args.run}: no dataset.test_used; give --eval-size")
        if eval_size <= 0:
            raise Error("--eval-size must be positive")
        rows, lam, n = rows_of(doc, float(eval_size))
        out_dir = os.path.dirname(args.output)
        if out_dir:
            os.makedirs(out_dir, exist_ok=True)
        written = plot(rows, lam, n, float(eval_size), args.output, formats, args.title)
        tsv = f"{args.output}-eval-divisor.tsv"
        keys = list(rows[0])
        with open(tsv, "w", encoding="utf-8") as f:
            f.write(f"# lambda={lam:g} n={n:g} n_eval={eval_size:g} ({args.run})\n")
            f.write("\t".join(keys) + "\n")
            for r in rows:
                f.write("\t".join(f"{r[k]:.6g}" if isinstance(r[k], float) else str(r[k]) for k in keys) + "\n")
        written.append(tsv)
    except Error as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"{PROG}: error: {e.filename or args.output}: {e.strerror or e}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
