#!/usr/bin/env python3
"""Epoch time of regulab versus the Python PyTorch reference, same configuration, same machine.

Runs one workload through the regulab binary and through scripts/reference/*_reference.py,
reads the per-epoch training seconds (`epochs[k].seconds`, evaluation excluded) from both
run JSONs, and prints the median seconds per epoch of each, the ratio python/regulab, and a
markdown table row for the README. With 3 or more epochs the first epoch is left out of the
median as warm-up (allocator, thread pool, page faults).

Workloads (both sides get the same flags; the Python side also gets --optimizer-impl
torch-default, i.e. torch.optim as a plain PyTorch script would use it):
  mf   regulab mf --data DIR --split u1 --model biased --dim 16 --optimizer adam --lr 0.01
                  --batch-size 1024 --epochs N --seed 0 --device D --quiet --out FILE
  mlp  regulab mlp --data DIR --epochs N --batch-size 128 --device D --quiet --out FILE
       (the lecture network 784-512-256-128-10, relu, cross-entropy, adam lr 0.001)

Everything after a bare `--` is appended to both command lines, for example
  scripts/bench.py mlp --epochs 3 -- --limit-train 10000 --limit-test 2000

Examples:
  scripts/bench.py mf --epochs 10 --threads 2
  scripts/bench.py mlp --epochs 3 --device cuda
  scripts/bench.py mf --python-only          # no regulab binary yet: time the reference only
"""

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE = {"mf": os.path.join(ROOT, "scripts", "reference", "mf_reference.py"),
             "mlp": os.path.join(ROOT, "scripts", "reference", "mlp_reference.py")}
DATA_NAME = {"mf": "ml-100k", "mlp": "fashion-mnist"}
DESCRIPTION = {"mf": "ml-100k u1, biased MF dim 16, adam, batch 1024",
               "mlp": "Fashion-MNIST, MLP 512-256-128 relu, adam, batch 128"}


def parse_args(argv):
    # Split off the passthrough part first so argparse never sees it.
    passthrough = []
    if "--" in argv:
        cut = argv.index("--")
        argv, passthrough = argv[:cut], argv[cut + 1:]
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n", 1)[0],
        epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workload", choices=("mf", "mlp"))
    parser.add_argument("--epochs", type=int, default=5,
                        help="epochs per run (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for both sides: OMP_NUM_THREADS/MKL_NUM_THREADS in "
                             "their environment, and --threads N on each command line that "
                             "has the flag (default: each side's own default)")
    parser.add_argument("--device", default="cpu",
                        help="device for both sides, cpu or cuda (default: %(default)s); "
                             "timing only, parity is checked on cpu")
    parser.add_argument("--data", default=None, metavar="DIR",
                        help="data directory (default: $REGULAB_DATA/ml-100k or "
                             "$REGULAB_DATA/fashion-mnist, REGULAB_DATA defaulting to data)")
    parser.add_argument("--regulab", default=os.path.join(ROOT, "target", "release", "regulab"),
                        metavar="PATH", help="regulab binary (default: target/release/regulab)")
    parser.add_argument("--python", default=sys.executable, metavar="PATH",
                        help="Python interpreter with torch for the reference "
                             "(default: the one running this script)")
    parser.add_argument("--python-only", action="store_true",
                        help="skip regulab and time the Python reference alone")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per side; the median pools the measured epochs of all runs "
                             "(default: %(default)s)")
    parser.add_argument("--keep", metavar="DIR", default=None,
                        help="keep the run JSONs in DIR (default: a temporary folder, removed)")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.repeat < 1:
        parser.error("--epochs and --repeat must be positive")
    if args.data is None:
        args.data = os.path.join(os.environ.get("REGULAB_DATA", "data"), DATA_NAME[args.workload])
    args.passthrough = passthrough
    return args


def accepts_flag(command, flag):
    """Whether `command --help` mentions `flag` (regulab may not have --threads yet)."""
    try:
        result = subprocess.run(command + ["--help"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return flag in result.stdout + result.stderr


def workload_flags(args, out, threads_flag):
    """Flags shared by both command lines (identical names on both sides)."""
    if args.workload == "mf":
        flags = ["--data", args.data, "--split", "u1", "--model", "biased", "--dim", "16",
                 "--optimizer", "adam", "--lr", "0.01", "--batch-size", "1024",
                 "--epochs", str(args.epochs), "--seed", "0"]
    else:
        flags = ["--data", args.data, "--epochs", str(args.epochs), "--batch-size", "128"]
    flags += ["--device", args.device, "--quiet", "--out", out]
    if args.threads is not None and threads_flag:
        flags += ["--threads", str(args.threads)]
    return flags + args.passthrough


def run_side(name, command, env):
    """Runs one command, returns its run JSON's per-epoch training seconds and config."""
    print(f"[{name}] {shlex.join(command)}", file=sys.stderr)
    started = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=env)
    if result.returncode != 0:
        sys.exit(f"bench: {name} failed (exit {result.returncode}):\n{result.stderr.strip()}")
    out = command[command.index("--out") + 1]
    with open(out) as f:
        run = json.load(f)
    seconds = [float(epoch["seconds"]) for epoch in run["epochs"]]
    print(f"[{name}] done in {time.perf_counter() - started:.1f}s wall "
          f"(epochs: {' '.join(f'{s:.4f}' for s in seconds)})", file=sys.stderr)
    return seconds, run.get("config", {})


def measured(seconds):
    """Epoch times that count: all of them, or all but the warm-up epoch when there are 3+."""
    return seconds[1:] if len(seconds) >= 3 else seconds


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not os.path.exists(args.data):
        sys.exit(f"bench: data directory {args.data} does not exist (use --data)")
    if not args.python_only and not os.access(args.regulab, os.X_OK):
        sys.exit(f"bench: no regulab binary at {args.regulab}; build it with "
                 "`cargo build --release`, pass --regulab PATH, or use --python-only")

    keep = args.keep
    tmp = None
    if keep is None:
        tmp = tempfile.TemporaryDirectory(prefix="regulab-bench-")
        keep = tmp.name
    os.makedirs(keep, exist_ok=True)

    env = dict(os.environ)
    if args.threads is not None:
        # libtorch's intra-op pool follows OMP_NUM_THREADS when nothing sets it explicitly,
        # so this pins the thread count even for a regulab without a --threads flag.
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(args.threads)
    regulab_threads_flag = (args.threads is not None and not args.python_only
                            and accepts_flag([args.regulab, args.workload], "--threads"))

    times = {"regulab": [], "pytorch": []}
    config = {}
    for r in range(args.repeat):
        # Alternate the sides' order between repeats so that neither always runs on a
        # machine warmed (or heated) by the other.
        sides = ["regulab", "pytorch"] if r % 2 == 0 else ["pytorch", "regulab"]
        for side in sides:
            if side == "regulab" and args.python_only:
                continue
            out = os.path.join(keep, f"{args.workload}-{side}-{r + 1}.json")
            if side == "regulab":
                command = [args.regulab, args.workload] + workload_flags(args, out, regulab_threads_flag)
            else:
                # torch.optim as an ordinary PyTorch script uses it (not the parity replay).
                command = ([args.python, REFERENCE[args.workload]]
                           + workload_flags(args, out, True) + ["--optimizer-impl", "torch-default"])
            seconds, side_config = run_side(side, command, env)
            times[side].extend(measured(seconds))
            if side == "pytorch":
                config = side_config

    medians = {side: statistics.median(t) if t else None for side, t in times.items()}
    skipped = "first epoch skipped as warm-up" if args.epochs >= 3 else "all epochs"
    threads = config.get("torch_threads", args.threads)
    where = (args.device if args.device != "cpu"
             else f"cpu, {threads} thread{'' if threads == 1 else 's'}")
    device_name = config.get("device_name", "")

    print(f"{args.workload}: {DESCRIPTION[args.workload]}")
    print(f"device: {where} ({device_name}); {args.epochs} epochs x {args.repeat} run(s), "
          f"median over {len(times['pytorch'])} epochs per side ({skipped})")
    for side in ("regulab", "pytorch"):
        if medians[side] is not None:
            print(f"  {side:8s} {medians[side]:.4f} s/epoch")
    ratio = None
    if medians["regulab"]:
        ratio = medians["pytorch"] / medians["regulab"]
        print(f"  ratio python/regulab: {ratio:.2f}")
    fmt = lambda x: f"{x:.3f} s" if x is not None else "n/a"  # noqa: E731
    print()
    print("| workload | device | regulab s/epoch | PyTorch s/epoch | PyTorch / regulab |")
    print("|---|---|---|---|---|")
    print(f"| {args.workload}: {DESCRIPTION[args.workload]} | {where} ({device_name}) | "
          f"{fmt(medians['regulab'])} | {fmt(medians['pytorch'])} | "
          f"{f'{ratio:.2f}x' if ratio is not None else 'n/a'} |")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
