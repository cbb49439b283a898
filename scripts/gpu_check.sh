#!/usr/bin/env bash
# GPU check: the same MF runs on --device cuda and on --device cpu, their curves compared and
# their epoch times recorded.
#
#   scripts/gpu_check.sh [--regulab BIN] [--torch-lib DIR] [--ml100k DIR] [--big DIR]
#                        [--epochs N] [--out DIR]
#
# --regulab    the binary (default target/release/regulab). A binary built on another
#              machine runs with LD_LIBRARY_PATH at the lib folder of the same PyTorch
#              (torch 2.11; docs/build.md): give that folder as --torch-lib.
# --ml100k     MovieLens 100K folder (default ../shared/data/ml-100k from the repo root).
# --big        a 25M-rating ml-25m-shaped folder with u1.base/u1.test; written with
#              `regulab data synth` into OUT/synth-25m when not given (162,000 users,
#              59,000 items, 25M ratings, 20M of them for training).
# --epochs     epochs of the ml-100k runs (default 5); the 25M-shaped runs train 1 epoch.
# --out        folder for the run documents and gpu_check.md (default runs/gpu-check).
#
# Runs (biased MF, K 16, batch 1024, adam lr 0.01, seed 0), each as dense and --sparse:
#   ml-100k u1:  cpu and cuda, --epochs N; curves compared
#   25M-shaped:  cuda dense and sparse, cpu sparse (a dense CPU epoch there takes minutes),
#                1 epoch; the sparse curves compared
# Curves agree when every epoch's train total_loss and test rmse differ by at most
# TOLERANCE (relative, default 1e-3): CUDA kernels sum in other orders (and index_add's
# backward uses atomics), so float32 results drift apart by rounding, never by more.
#
# Without a CUDA device (`regulab info --json` says cuda_available false) the CPU runs still
# run and the script says clearly that the CUDA half was skipped; it exits 0 then, 1 when a
# comparison fails, 2 on bad usage.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
regulab="$root/target/release/regulab"
torch_lib=""
ml100k="$root/../shared/data/ml-100k"
big=""
epochs=5
out="runs/gpu-check"
tolerance="${TOLERANCE:-1e-3}"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --regulab) regulab="$2"; shift 2 ;;
    --torch-lib) torch_lib="$2"; shift 2 ;;
    --ml100k) ml100k="$2"; shift 2 ;;
    --big) big="$2"; shift 2 ;;
    --epochs) epochs="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -n "$torch_lib" ]; then
  export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
[ -x "$regulab" ] || { echo "gpu_check.sh: --regulab $regulab: not an executable" >&2; exit 2; }
[ -f "$ml100k/u1.base" ] || { echo "gpu_check.sh: --ml100k $ml100k: has no u1.base" >&2; exit 2; }
mkdir -p "$out"
python="$(command -v python3)" || { echo "gpu_check.sh: needs python3 for the JSON checks" >&2; exit 2; }

cuda="$("$regulab" info --json | "$python" -c 'import json,sys; print(str(json.load(sys.stdin)["cuda_available"]).lower())')"
if [ "$cuda" = "true" ]; then
  devices="cpu cuda"
else
  devices="cpu"
  echo "gpu_check.sh: no CUDA device (regulab info --json: cuda_available false):" \
       "running the CPU runs only; the CUDA runs and comparisons are SKIPPED" >&2
fi

# train NAME DATA EPOCHS DEVICE [flags...]: one run document OUT/NAME-DEVICE.json
train() {
  local name="$1" data="$2" n="$3" device="$4"; shift 4
  echo "gpu_check.sh: $name on $device" >&2
  "$regulab" mf --data "$data" --split u1 --model biased --dim 16 --batch-size 1024 \
    --optimizer adam --lr 0.01 --seed 0 --epochs "$n" --device "$device" --quiet \
    --out "$out/$name-$device.json" "$@"
}

for mode in dense sparse; do
  flags=(); [ "$mode" = sparse ] && flags=(--sparse)
  for device in $devices; do train "ml100k-$mode" "$ml100k" "$epochs" "$device" "${flags[@]}"; done
done
if [ "$cuda" = "true" ]; then
  if [ -z "$big" ]; then
    big="$out/synth-25m"
    if [ ! -f "$big/u1.base" ]; then
      "$regulab" data synth --out "$big" --synthetic-users 162000 --synthetic-items 59000 \
        --synthetic-ratings 25000000
    fi
  fi
  train big-dense "$big" 1 cuda
  train big-sparse "$big" 1 cuda --sparse
  train big-sparse "$big" 1 cpu --sparse
fi

# Compares the cpu and cuda documents of each workload and writes OUT/gpu_check.md.
"$python" - "$out" "$tolerance" <<'PY'
import glob, json, os, statistics, sys
out, tolerance = sys.argv[1], float(sys.argv[2])
runs = {}
for path in sorted(glob.glob(os.path.join(out, "*.json"))):
    name, device = os.path.basename(path)[:-5].rsplit("-", 1)
    with open(path) as f:
        runs.setdefault(name, {})[device] = json.load(f)
failed = False
lines = ["| workload | device | s/epoch (median) | last test RMSE |", "|---|---|---|---|"]
for name, by_device in sorted(runs.items()):
    for device, doc in sorted(by_device.items()):
        seconds = statistics.median(e["seconds"] for e in doc["epochs"])
        lines.append(f"| {name} | {device} | {seconds:.3f} | {doc['epochs'][-1]['test']['rmse']:.4f} |")
    if "cpu" not in by_device or "cuda" not in by_device:
        continue
    worst = 0.0
    for c, g in zip(by_device["cpu"]["epochs"], by_device["cuda"]["epochs"]):
        for split, key in (("train", "total_loss"), ("test", "rmse")):
            a, b = c[split][key], g[split][key]
            worst = max(worst, abs(a - b) / max(abs(a), 1e-12))
    verdict = "agree" if worst <= tolerance else "DIFFER"
    failed |= worst > tolerance
    print(f"{name}: cpu and cuda curves {verdict} (largest relative difference {worst:.2e}, "
          f"tolerance {tolerance:g})")
with open(os.path.join(out, "gpu_check.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
print("\n".join(lines))
sys.exit(1 if failed else 0)
PY
if [ "$cuda" != "true" ]; then
  echo "gpu_check.sh: CUDA part SKIPPED (no CUDA device); only CPU epoch times are above" >&2
fi
