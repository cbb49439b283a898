#!/usr/bin/env bash
# Parallel sweeps against serial ones, in one sitting: 8 ml-100k u1 runs (batch-l2, 4 lambdas
# x 2 seeds, 20 epochs by default) with --jobs 1 and with --jobs 2 --threads 1, alternated --rounds times.
# Prints each wall time, the ratio jobs-2 / jobs-1, and whether the summaries' numbers agree.
#
#   scripts/bench_jobs.sh [--regulab PATH] [--movielens DIR] [--rounds N] [--jobs N] [--epochs N]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
regulab="$root/target/release/regulab"
movielens="$root/../shared/data/ml-100k"
rounds=2
jobs=2
epochs=20
while [ $# -gt 0 ]; do
    case "$1" in
        --regulab) regulab="$2"; shift ;;
        --movielens) movielens="$2"; shift ;;
        --rounds) rounds="$2"; shift ;;
        --jobs) jobs="$2"; shift ;;
        --epochs) epochs="$2"; shift ;;
        -h | --help) sed -n 2,7p "$0"; exit 0 ;;
        *) echo "bench_jobs.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

sweep() { # FOLDER [extra flags]
    local folder="$1"
    shift
    "$regulab" sweep mf --data "$movielens" --split u1 --penalty batch-l2 \
        --lambda 0.01,0.05,0.1,0.2 --seed 1,2 --epochs "$epochs" --threads 1 --quiet \
        --out "$folder" "$@" >/dev/null 2>&1
}

seconds() { # command... -> wall seconds
    local start end
    start=$(date +%s.%N)
    "$@"
    end=$(date +%s.%N)
    python3 -c "print($end - $start)"
}

echo "| round | --jobs 1 (s) | --jobs $jobs --threads 1 (s) | ratio |"
echo "|---|---|---|---|"
for round in $(seq 1 "$rounds"); do
    one=$(seconds sweep "$work/one-$round")
    many=$(seconds sweep "$work/many-$round" --jobs "$jobs")
    printf '| %s | %.2f | %.2f | %.2f |\n' "$round" "$one" "$many" "$(python3 -c "print($many / $one)")"
done
python3 - "$work/one-1/summary.json" "$work/many-1/summary.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
numbers = lambda s: [(r["file"], r["status"], r["test_at_selected"]) for r in s["runs"]]
same = numbers(a) == numbers(b) and a["groups"] == b["groups"]
print(f"summaries' numbers identical: {same}")
sys.exit(0 if same else 1)
PY
