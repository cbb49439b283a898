#!/usr/bin/env python3
"""The fused MF step against autograd and the Python loops, alternating in one run.

On one MovieLens-format folder (u1.base/u1.test: ml-100k, or a set written by
`regulab data synth`), runs biased MF (dim 16, batch 1024, Adam lr 0.01, seed 0) as these
programs, one after the other, `--rounds` times in turn (so that a shared machine's load
falls on all of them alike):

  fused          regulab mf --engine fused     (the fused CPU step, src/fused_mf/)
  autograd       regulab mf --engine autograd  (the reference path)
  python-dense   scripts/reference/mf_reference.py --optimizer-impl torch-default
                 (the lecture's loop: dense tensors, torch.optim.Adam)
  python-sparse  scripts/reference/mf_reference.py --sparse
                 (nn.Embedding(sparse=True) tables, torch.optim.SparseAdam)

With --sparse the two regulab programs train with --sparse (SparseAdam). Prints per program
the median over rounds of its median training seconds per epoch (`epochs[k].seconds`,
evaluation excluded; with 3 or more epochs the first is left out as warm-up), the test RMSE
after the last epoch, the peak resident memory (ru_maxrss, data loading included) and
fused's time as a fraction of each program's. The load average before and after is printed:
on a loaded machine compare the ratios, not the seconds.

Examples:
  .venv/bin/python scripts/bench_engines.py --data ../shared/data/ml-100k --epochs 5 \\
      --rounds 3 --programs fused,autograd,python-dense
  regulab data synth --out /tmp/synth-2m --synthetic-users 40000 --synthetic-items 8000 \\
      --synthetic-ratings 2000000
  .venv/bin/python scripts/bench_engines.py --data /tmp/synth-2m --sparse --epochs 1
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_sparse import machine, uptime  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROGRAMS = ("fused", "autograd", "python-dense", "python-sparse")


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n", 1)[0],
        epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, metavar="DIR",
                        help="folder with u1.base and u1.test")
    parser.add_argument("--sparse", action="store_true",
                        help="train the regulab programs with --sparse (SparseAdam)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per program (default: 1)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="times each program runs, in turn (default: 1)")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads for every program (default: %(default)s)")
    parser.add_argument("--programs", default=",".join(PROGRAMS),
                        help="comma-separated subset of " + ", ".join(PROGRAMS))
    parser.add_argument("--regulab", default=os.path.join(ROOT, "target", "release", "regulab"),
                        help="the regulab binary (default: target/release/regulab)")
    parser.add_argument("--python", default=sys.executable,
                        help="Python with torch for the reference (default: this one)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    args.programs = [p.strip() for p in args.programs.split(",") if p.strip()]
    unknown = [p for p in args.programs if p not in PROGRAMS]
    if unknown:
        parser.error(f"--programs: unknown {', '.join(unknown)}; use {', '.join(PROGRAMS)}")
    if not os.path.isfile(os.path.join(args.data, "u1.base")):
        parser.error(f"--data {args.data}: has no u1.base")
    return args


def command(program, args, out):
    common = ["--data", args.data, "--split", "u1", "--model", "biased", "--dim", "16",
              "--optimizer", "adam", "--lr", "0.01", "--batch-size", "1024",
              "--epochs", str(args.epochs), "--seed", "0", "--threads", str(args.threads),
              "--quiet", "--out", out]
    if program in ("fused", "autograd"):
        sparse = ["--sparse"] if args.sparse else []
        return ([args.regulab, "mf", "--device", "cpu", "--engine", program,
                 "--checkpoint-every", "0"] + common + sparse)
    reference = os.path.join(ROOT, "scripts", "reference", "mf_reference.py")
    impl = ["--sparse"] if program == "python-sparse" else ["--optimizer-impl", "torch-default"]
    return [args.python, reference] + common + impl


def run(program, args, directory, round_number):
    # A fresh document per round: regulab would take a finished run's document as done.
    out = os.path.join(directory, f"{program}-{round_number}.json")
    argv = command(program, args, out)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    start = time.perf_counter()
    child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    stderr = child.stderr.read().decode(errors="replace")
    child.stderr.close()
    if status != 0:
        sys.exit(f"error: {program} failed ({' '.join(argv)}):\n{stderr}")
    with open(out) as f:
        document = json.load(f)
    seconds = [e["seconds"] for e in document["epochs"]]
    timed = seconds[1:] if len(seconds) >= 3 else seconds
    return {"epoch_seconds": statistics.median(timed), "all_epoch_seconds": seconds,
            "test_rmse": document["epochs"][-1]["test"]["rmse"],
            "peak_rss_mib": usage.ru_maxrss / 1024, "wall_seconds": wall,
            "engine": document.get("environment", {}).get("engine", "python"),
            "command": " ".join(argv)}


def main(argv=None):
    args = parse_args(argv)
    load_before = uptime()
    rounds = {p: [] for p in args.programs}
    with tempfile.TemporaryDirectory() as directory:
        for round_number in range(args.rounds):
            for program in args.programs:
                print(f"round {round_number + 1}: {program} ...", file=sys.stderr, flush=True)
                rounds[program].append(run(program, args, directory, round_number))
    load_after = uptime()
    results = {}
    for program, runs in rounds.items():
        results[program] = dict(runs[-1], program=program,
                                epoch_seconds=statistics.median(r["epoch_seconds"] for r in runs),
                                round_seconds=[r["epoch_seconds"] for r in runs],
                                peak_rss_mib=max(r["peak_rss_mib"] for r in runs))
    fused = results.get("fused")
    print(f"data: {args.data}; sparse: {args.sparse}; epochs {args.epochs}; "
          f"rounds {args.rounds}; threads {args.threads}")
    print(f"machine: {machine()}")
    print(f"load average (1, 5, 15 min): before {load_before}; after {load_after}")
    print()
    print("| program | s/epoch (median of rounds) | rounds | fused / this | test RMSE | peak RSS |")
    print("|---|---|---|---|---|---|")
    for program, r in results.items():
        ratio = f"{fused['epoch_seconds'] / r['epoch_seconds']:.3f}" if fused else "-"
        rounds_text = ", ".join(f"{s:.3f}" for s in r["round_seconds"])
        print(f"| {program} | {r['epoch_seconds']:.3f} | {rounds_text} | {ratio} | "
              f"{r['test_rmse']:.4f} | {r['peak_rss_mib']:.0f} MiB |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"data": args.data, "sparse": args.sparse, "epochs": args.epochs,
                       "rounds": args.rounds, "threads": args.threads, "machine": machine(),
                       "load_before": load_before, "load_after": load_after,
                       "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
