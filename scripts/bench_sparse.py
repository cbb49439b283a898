#!/usr/bin/env python3
"""Dense versus row-sparse matrix factorization, regulab versus Python PyTorch, in one run.

On one MovieLens-format folder (u1.base/u1.test, e.g. written by `regulab data synth`), runs
biased MF (dim 16, batch 1024, Adam lr 0.01, seed 0) as up to four programs, one after the
other on the same machine:

  regulab-dense    regulab mf                       (torch.optim.Adam's rule)
  regulab-sparse   regulab mf --sparse              (torch.optim.SparseAdam's rule)
  python-dense     scripts/reference/mf_reference.py --optimizer-impl torch-default
                   (the lecture's loop: dense tensors, torch.optim.Adam as a script uses it)
  python-sparse    scripts/reference/mf_reference.py --sparse
                   (nn.Embedding(sparse=True) tables, torch.optim.SparseAdam)

and prints, per program: the median training seconds per epoch (`epochs[k].seconds`, the
evaluation excluded; with 3 or more epochs the first is left out as warm-up), the test RMSE
after the last epoch, the peak resident memory of the whole process (data loading included,
from wait4's ru_maxrss) and the ratio of its epoch time to regulab-sparse's. The machine's
load (`uptime`) before and after is printed with the table: timings on a shared machine are
noisy, so compare ratios from one run.

Example:
  regulab data synth --out /tmp/synth-5m --synthetic-users 70000 --synthetic-items 10000 \\
      --synthetic-ratings 5000000
  .venv/bin/python scripts/bench_sparse.py --data /tmp/synth-5m --epochs 1 --threads 1
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROGRAMS = ("regulab-dense", "regulab-sparse", "python-dense", "python-sparse")


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n", 1)[0],
        epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, metavar="DIR",
                        help="folder with u1.base and u1.test")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per program (default: 1)")
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
    sparse = ["--sparse"] if program.endswith("sparse") else []
    if program.startswith("regulab"):
        return [args.regulab, "mf", "--device", "cpu"] + common + sparse
    reference = os.path.join(ROOT, "scripts", "reference", "mf_reference.py")
    impl = [] if sparse else ["--optimizer-impl", "torch-default"]
    return [args.python, reference] + common + sparse + impl


def run(program, args, directory):
    out = os.path.join(directory, f"{program}.json")
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
    epochs = document["epochs"]
    seconds = [e["seconds"] for e in epochs]
    timed = seconds[1:] if len(seconds) >= 3 else seconds
    return {"program": program, "command": " ".join(argv),
            "epoch_seconds": statistics.median(timed), "all_epoch_seconds": seconds,
            "test_rmse": epochs[-1]["test"]["rmse"], "peak_rss_mib": usage.ru_maxrss / 1024,
            "wall_seconds": wall}


def uptime():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}"


def main(argv=None):
    args = parse_args(argv)
    load_before = uptime()
    results = []
    with tempfile.TemporaryDirectory() as directory:
        for program in args.programs:
            print(f"running {program} ...", file=sys.stderr, flush=True)
            results.append(run(program, args, directory))
    load_after = uptime()
    base = next((r for r in results if r["program"] == "regulab-sparse"), results[0])
    print(f"data: {args.data}; epochs {args.epochs}; threads {args.threads}")
    print(f"machine: {machine()}")
    print(f"load average (1, 5, 15 min): before {load_before}; after {load_after}")
    print()
    print(f"| program | s/epoch | / {base['program']} | test RMSE | peak RSS |")
    print("|---|---|---|---|---|")
    for r in results:
        ratio = r["epoch_seconds"] / base["epoch_seconds"]
        print(f"| {r['program']} | {r['epoch_seconds']:.2f} | {ratio:.2f}x | "
              f"{r['test_rmse']:.4f} | {r['peak_rss_mib']:.0f} MiB |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"data": args.data, "epochs": args.epochs, "threads": args.threads,
                       "machine": machine(), "load_before": load_before,
                       "load_after": load_after, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
