#!/usr/bin/env bash
# Writes every output regulab makes for a fixed set of runs (each example config, one
# sweep, their figures, findings and report) into one folder, so that two builds can be
# compared: a refactor must leave them identical apart from time stamps and durations.
#
#   scripts/compare_outputs.sh make BIN DIR     # run BIN, write outputs under DIR
#   scripts/compare_outputs.sh diff DIR_A DIR_B # compare two such folders
#
# MovieLens and Fashion-MNIST come from ../shared/data (or $REGULAB_SHARED_DATA); epochs
# are cut so the whole set takes a few minutes on 2 cores.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data="${REGULAB_SHARED_DATA:-$root/../shared/data}"

make_outputs() {
    local dest="$2"
    # Documents record the command line too: every build runs from the same path.
    local bin="${TMPDIR:-/tmp}/regulab-compare-bin/regulab"
    mkdir -p "$(dirname "$bin")"
    cp "$1" "$bin"
    # Documents record their own paths: every build writes to the same place, then moves.
    local out="${TMPDIR:-/tmp}/regulab-compare-outputs"
    rm -rf "$out"
    mkdir -p "$out"
    cd "$root"
    local mf=(--set "data=$data/ml-100k" --set epochs=4 --set threads=1)
    local mlp=(--set "data=$data/fashion-mnist" --set epochs=2 --set limit_train=3000 --set limit_test=1000)
    for config in examples/*.toml; do
        local name
        name="$(basename "$config" .toml)"
        case "$name" in
            mf-*) "$bin" run "$config" "${mf[@]}" --set "out=$out/$name.json" --quiet ;;
            mlp-*) "$bin" run "$config" "${mlp[@]}" --set "out=$out/$name.json" --quiet ;;
        esac
        "$bin" explain "$out/$name.json" >"$out/$name.explain.txt"
        "$bin" plot "$out/$name.json" -o "$out/$name.svg"
    done
    "$bin" mlp --data "$data/fashion-mnist" --hidden 30 --activation sigmoid --loss mse \
        --optimizer sgd --lr 0.5 --batch-size 10 --penalty l2 --lambda 5 --epochs 2 \
        --limit-train 2000 --limit-test 500 --val-split 0.1 --seed 3 \
        --out "$out/quadratic.json" --quiet
    "$bin" explain "$out/quadratic.json" >"$out/quadratic.explain.txt"
    "$bin" plot "$out/quadratic.json" -o "$out/quadratic.svg"
    "$bin" sweep --config examples/sweeps/mf-lambda.toml --data "$data/ml-100k" --epochs 3 \
        --threads 1 --seed 1,2 --out "$out/sweep" --quiet
    "$bin" plot "$out/sweep/summary.json" -o "$out/sweep.svg"
    "$bin" plot "$out"/mf-*.json -o "$out/mf-all.png"
    "$bin" plot "$out/mf-batch-l2.json" --steps -o "$out/mf-batch-l2-steps.svg"
    "$bin" explain "$out"/sweep/*.json >"$out/sweep.explain.txt" 2>&1 || true
    "$bin" report "$out/sweep" -o "$out/sweep-report.html"
    "$bin" report "$out"/mf-*.json "$out"/mlp-*.json "$out/quadratic.json" -o "$out/runs-report.html"
    mkdir -p "$(dirname "$dest")"
    mv "$out" "$dest"
}

diff_outputs() {
    local python="$root/.venv/bin/python"
    [ -x "$python" ] || python=python3
    "$python" - "$1" "$2" <<'PY'
import json, os, re, sys
a, b = sys.argv[1], sys.argv[2]
# Keys whose values are clocks or durations, and text that prints them.
VOLATILE = re.compile(r"(time|started|finished|seconds|duration|elapsed|_at$|hostname|pid)", re.I)
def scrub(value):
    if isinstance(value, dict):
        return {k: ("<volatile>" if VOLATILE.search(k) else scrub(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value
STAMP = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z?|\b\d+(\.\d+)? ?s\b|\b\d+(\.\d+)? ?ms\b")
def load(path):
    data = open(path, "rb").read()
    if path.endswith(".json"):
        return json.dumps(scrub(json.loads(data)), sort_keys=True)
    if path.endswith(".safetensors"):
        # The header is a JSON map whose key order the writer does not fix.
        size = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + size])
        for key, text in header.get("__metadata__", {}).items():
            try:
                header["__metadata__"][key] = scrub(json.loads(text))
            except ValueError:
                pass
        return json.dumps(header, sort_keys=True).encode() + data[8 + size:]
    if path.endswith(".html"):
        # The page embeds the documents as JSON; its clocks are scrubbed like theirs.
        return STAMP.sub(b"<t>", data)
    return data
def files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)
fa, fb = files(a), files(b)
bad = 0
for name in sorted(set(fa) | set(fb)):
    if name not in fa or name not in fb:
        print(f"only in one: {name}"); bad += 1; continue
    if load(os.path.join(a, name)) != load(os.path.join(b, name)):
        print(f"differs: {name}"); bad += 1
print(f"{len(fa)} files compared, {bad} differ")
sys.exit(1 if bad else 0)
PY
}

case "${1:-}" in
    make) make_outputs "$2" "$3" ;;
    diff) diff_outputs "$2" "$3" ;;
    *) echo "usage: $0 make BIN DIR | diff DIR_A DIR_B" >&2; exit 2 ;;
esac
