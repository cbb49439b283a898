#!/usr/bin/env python3
"""Compares the per-epoch numbers of two run JSONs (regulab and a reference script, or any two).

Every numeric field that both runs have under epochs[k].train, .test, .weight_norms and
epochs[k].implied_weight_decay_loss is compared with a relative tolerance (absolute when
the reference value is 0). Timing fields are ignored. Exit status 0 when all agree, 1 when
any differs, 2 when the runs cannot be compared (different epoch counts, no shared fields).

Example:
  python scripts/reference/compare_runs.py runs/regulab.json runs/reference.json --rtol 1e-5
"""

import argparse
import json
import math
import sys

SECTIONS = ("train", "test", "weight_norms")


def fields(epoch):
    """Flattens one epoch record to {"test.rmse": value, ...} (numbers only)."""
    flat = {}
    for section in SECTIONS:
        for key, value in (epoch.get(section) or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                flat[f"{section}.{key}"] = float(value)
    value = epoch.get("implied_weight_decay_loss")
    if isinstance(value, (int, float)):
        flat["implied_weight_decay_loss"] = float(value)
    return flat


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", help="first run JSON (e.g. regulab's)")
    parser.add_argument("b", help="second run JSON, the reference")
    parser.add_argument("--rtol", type=float, default=1e-5,
                        help="relative tolerance (default: %(default)s)")
    parser.add_argument("--atol", type=float, default=1e-12,
                        help="absolute tolerance where the reference is 0 (default: %(default)s)")
    parser.add_argument("--verbose", "-v", action="store_true", help="print every field")
    args = parser.parse_args(argv)

    with open(args.a) as f:
        a = json.load(f)["epochs"]
    with open(args.b) as f:
        b = json.load(f)["epochs"]
    if len(a) != len(b):
        print(f"epoch counts differ: {len(a)} vs {len(b)}")
        return 2
    compared = exact = 0
    failures = []
    worst = (0.0, None)
    for ea, eb in zip(a, b):
        fa, fb = fields(ea), fields(eb)
        for key in sorted(set(fa) & set(fb)):
            x, y = fa[key], fb[key]
            compared += 1
            if x == y:
                exact += 1
                rel = 0.0
            elif y == 0.0:
                rel = math.inf if abs(x) > args.atol else 0.0
            else:
                rel = abs(x - y) / abs(y)
            if not (rel <= args.rtol):
                failures.append((ea.get("epoch"), key, x, y, rel))
            if rel > worst[0]:
                worst = (rel, f"epoch {ea.get('epoch')} {key}")
            if args.verbose:
                print(f"epoch {ea.get('epoch')} {key:32s} {x!r:>24} {y!r:>24} rel {rel:.2e}")
        only = sorted(set(fa) ^ set(fb))
        if only and args.verbose:
            print(f"epoch {ea.get('epoch')}: only in one run: {', '.join(only)}")
    if compared == 0:
        print("no shared numeric fields")
        return 2
    print(f"{compared} values compared, {exact} bit-identical, max relative difference "
          f"{worst[0]:.3e}" + (f" ({worst[1]})" if worst[1] else ""))
    for epoch, key, x, y, rel in failures:
        print(f"  DIFFERS epoch {epoch} {key}: {x!r} vs {y!r} (rel {rel:.3e})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
