#!/usr/bin/env bash
# Regenerate every experiment of the regularization lecture (README.md, "Reproducing the lecture") into one
# folder: run JSONs, a sweep summary and the figures (PNG and SVG). See --help.
set -Eeuo pipefail

usage() {
    cat <<'EOF'
usage: scripts/reproduce_lecture.sh [--quick] [--movielens DIR] [--mnist DIR] [--out DIR]
                                    [--regulab PATH] [--threads N] [--jobs N]

Regenerates every lecture experiment (README.md, "Reproducing the lecture") into one folder: the run JSONs
(OUT/runs), a lambda sweep (OUT/sweep-mf-batch-l2), the figures (OUT/figures, PNG and
SVG, drawn by scripts/plot_curves.py and scripts/eval_divisor_cost.py), every run's findings
(OUT/explain.txt, regulab explain) and one interactive page with all of it (OUT/report.html,
regulab report). The commands it runs are printed and saved in OUT/commands.txt.

options:
  --quick          fewer epochs, and the MLP on a 10,000-image training subset: a few
                   minutes on 2 CPU cores
  --movielens DIR  MovieLens folder for the MF experiments (ml-100k: its official u1
                   split); default: regulab's synthetic ratings
  --mnist DIR      MNIST-format folder (MNIST or Fashion-MNIST) for the MLP experiments;
                   default: `mnist` or `fashion-mnist` when `regulab data list` shows it
                   cached, else the MLP experiments (d, f) are skipped
  --out DIR        output folder (default: results/lecture in the repository); its runs/,
                   figures/ and sweep-mf-batch-l2/ subfolders are replaced
  --regulab PATH   regulab binary (default: target/release/regulab in the repository;
                   build it with `cargo build --release`)
  --threads N      CPU threads per training run (regulab --threads). Default: 1 for the
                   MF runs (their tensors are tiny; a second thread only adds
                   synchronization and can slow them down many times on a busy machine),
                   torch's choice (the number of cores) for the MLP runs
  --jobs N         training runs at once (default 1): each experiment's runs train in
                   parallel, each with --threads threads (default: the cores divided by N),
                   and its figure is drawn when they are done; the sweep (g) uses
                   regulab sweep --jobs N. The numbers equal those of --jobs 1
  -h, --help       this help

experiments:
  a  MF without regularization (Adam lr 0.01, K=16): overfitting, train vs test RMSE
  b  MF with Adam weight decay, the slide's setting (1e-5, 100 epochs; quick: 30) next to
     no decay, 1e-4 (the slide's "10e-5") and the slide code's lr 0.001
  c  MF: explicit L2 penalty versus weight decay, with SGD and with Adam (and AdamW)
  d  MLP: --penalty l2 versus --weight-decay; --penalty norm (`loss + torch.norm(param)`)
  e  MF: the per-batch loss of a common MovieLens question (--penalty batch-l2) per step:
     base, regularization, total
  f  the quadratic-cost question's sigmoid network (784-30-10, SGD, L2 lambda=5, batch 10):
     test accuracy and the test cost with the training divisor n versus the question's
     evaluation-set divisor
  g  MF: sweep of the batch-l2 lambda over seeds (scripts/plot_curves.py --sweep)

environment: PYTHON, the Python with matplotlib for the plots (default: the repository's
.venv/bin/python, else python3).
EOF
}

die() {
    echo "reproduce_lecture.sh: error: $*" >&2
    exit 1
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
quick=0
movielens=""
mnist=""
out="$root/results/lecture"
regulab="$root/target/release/regulab"
threads=""
jobs_n=1

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --movielens | --mnist | --out | --regulab | --threads | --jobs)
            [ $# -ge 2 ] || die "$1 needs a value (see --help)"
            case "$1" in
                --movielens) movielens="$2" ;;
                --mnist) mnist="$2" ;;
                --out) out="$2" ;;
                --regulab) regulab="$2" ;;
                --threads) threads="$2" ;;
                --jobs) jobs_n="$2" ;;
            esac
            shift
            ;;
        --movielens=*) movielens="${1#*=}" ;;
        --mnist=*) mnist="${1#*=}" ;;
        --out=*) out="${1#*=}" ;;
        --regulab=*) regulab="${1#*=}" ;;
        --threads=*) threads="${1#*=}" ;;
        --jobs=*) jobs_n="${1#*=}" ;;
        -h | --help)
            usage
            exit 0
            ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
    shift
done

# ------------------------------------------------------------------------------ checks

if [ ! -x "$regulab" ]; then
    if [ -e "$regulab" ]; then
        die "$regulab is not executable"
    fi
    die "no regulab binary at $regulab; build it with \`cargo build --release\` in $root (or pass --regulab PATH)"
fi
if [ -n "${PYTHON:-}" ]; then
    py="$PYTHON"
elif [ -x "$root/.venv/bin/python" ]; then
    py="$root/.venv/bin/python"
else
    py="python3"
fi
"$py" -c 'import matplotlib' 2>/dev/null ||
    die "$py cannot import matplotlib (set PYTHON to a Python that has it, e.g. the one scripts/setup.sh makes)"
if [ -n "$threads" ]; then
    case "$threads" in
        '' | *[!0-9]* | 0) die "--threads: expected a positive integer, got '$threads'" ;;
    esac
fi
case "$jobs_n" in
    '' | *[!0-9]* | 0) die "--jobs: expected a positive integer, got '$jobs_n'" ;;
esac
if [ -n "$movielens" ] && [ ! -d "$movielens" ]; then
    die "--movielens $movielens: not a folder"
fi
if [ -n "$mnist" ] && [ ! -d "$mnist" ]; then
    die "--mnist $mnist: not a folder"
fi

trap 'status=$?; echo "reproduce_lecture.sh: stopped: the last command failed (exit status $status)" >&2' ERR

runs="$out/runs"
figs="$out/figures"
sweep_dir="$out/sweep-mf-batch-l2"
mkdir -p "$out"
rm -rf "$runs" "$figs" "$sweep_dir"
mkdir -p "$runs" "$figs"
commands="$out/commands.txt"
: >"$commands"
start_seconds=$SECONDS

plot_curves="$root/scripts/plot_curves.py"
eval_divisor_cost="$root/scripts/eval_divisor_cost.py"
formats="png,svg"

section() {
    settle
    printf '\n== %s\n' "$*"
    printf '\n# %s\n' "$*" >>"$commands"
}

# The arguments as one shell line: plain words bare, anything else in single quotes.
quote() {
    local line="" arg q="'"
    for arg in "$@"; do
        if [[ "$arg" =~ ^[A-Za-z0-9_./:=,+@%-]+$ ]]; then
            line+=" $arg"
        else
            line+=" $q${arg//$q/$q\\$q$q}$q"
        fi
    done
    printf '%s' "${line# }"
}

# Print a command (shell-quoted, so it can be pasted) and record it.
show() {
    local line
    line="$(quote "$@")"
    printf '+ %s\n' "$line"
    printf '%s\n' "$line" >>"$commands"
}

# Show a command, then run it.
run() {
    show "$@"
    "$@"
}

# The same without the command's standard output (the plot scripts list the files they
# write; the figures are listed at the end).
run_quietly() {
    show "$@"
    "$@" >/dev/null
}

# Train: regulab SUBCOMMAND ARGS... with the common flags. With --jobs N the run goes to the
# background, at most N at a time; settle waits for them.
train() {
    local sub="$1"
    shift
    local threads_for=("${thread_args[@]}")
    [ "$sub" = mf ] && threads_for=("${mf_thread_args[@]}")
    if [ "$jobs_n" -le 1 ]; then
        run "$regulab" "$sub" "$@" --quiet "${threads_for[@]}"
        return
    fi
    show "$regulab" "$sub" "$@" --quiet "${threads_for[@]}"
    "$regulab" "$sub" "$@" --quiet "${threads_for[@]}" &
    while [ "$(jobs -rp | wc -l)" -ge "$jobs_n" ]; do
        wait -n || die "a training run failed (its message is above)"
    done
}

# Waits for the runs in the background; any failure stops the script.
settle() {
    local pid
    for pid in $(jobs -p); do
        wait "$pid" || die "a training run failed (its message is above)"
    done
}

# Draw runs: plot NAME TITLE [--labels "L1;L2;..."] RUN.json...
plot() {
    local name="$1" title="$2"
    shift 2
    settle
    run_quietly "$py" "$plot_curves" "$@" -o "$figs/$name" --format "$formats" --title "$title"
}

# A value from a run JSON: json_value FILE PYTHON-EXPRESSION-ON-d
json_value() {
    settle
    "$py" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# a*b formatted for a flag value (%g: 8e-05 * 80000 -> 6.4).
times() {
    "$py" -c 'import sys; print("%g" % (float(sys.argv[1]) * float(sys.argv[2])))' "$1" "$2"
}

thread_args=()
mf_thread_args=(--threads 1)
if [ -n "$threads" ]; then
    thread_args=(--threads "$threads")
    mf_thread_args=(--threads "$threads")
elif [ "$jobs_n" -gt 1 ]; then
    # Parallel runs share the cores.
    cores="$(nproc 2>/dev/null || echo 1)"
    per_run=$((cores / jobs_n))
    [ "$per_run" -ge 1 ] || per_run=1
    thread_args=(--threads "$per_run")
fi

# ------------------------------------------------------------------------------ data

if [ -n "$movielens" ]; then
    if [ -f "$movielens/u1.base" ] && [ -f "$movielens/u1.test" ]; then
        mf_data=(--data "$movielens" --split u1)
        mf_desc="MovieLens ($movielens, split u1)"
    else
        mf_data=(--data "$movielens")
        mf_desc="MovieLens ($movielens, random 80/20 split: no u1.base/u1.test there)"
    fi
else
    mf_data=(--data synthetic)
    mf_desc="synthetic ratings (no --movielens given)"
fi

mlp_data=()
if [ -n "$mnist" ]; then
    mlp_data=(--data "$mnist")
    mlp_desc="$mnist"
else
    list_json="$("$regulab" data list --json)"
    cached="$(printf '%s' "$list_json" | "$py" -c '
import json, sys
cached = {d["name"]: d.get("cached") for d in json.load(sys.stdin).get("datasets", [])}
print(next((n for n in ("mnist", "fashion-mnist") if cached.get(n)), ""))')"
    if [ -n "$cached" ]; then
        mlp_data=(--data "$cached")
        mlp_desc="$cached (from regulab's cache)"
    else
        mlp_desc=""
    fi
fi

if [ "$quick" = 1 ]; then
    mode="quick"
    ep_a=20
    ep_b=30
    ep_c=20
    ep_e=20
    mlp_d=(--limit-train 10000 --epochs 10)
    mlp_f=(--limit-train 10000 --limit-test 2000 --epochs 10)
    sweep_lambdas="0,0.01,0.03,0.1,0.3,1"
    sweep_seeds="1,2"
    ep_g=20
else
    mode="full"
    ep_a=100
    ep_b=100
    ep_c=60
    ep_e=40
    mlp_d=(--epochs 15)
    mlp_f=(--limit-train 50000 --epochs 30)
    sweep_lambdas="0,0.003,0.01,0.03,0.1,0.3,1"
    sweep_seeds="1,2,3"
    ep_g=40
fi

echo "regulab lecture experiments ($mode mode)"
echo "  regulab:   $regulab"
echo "  ratings:   $mf_desc"
echo "  images:    ${mlp_desc:-none (MLP experiments d and f will be skipped)}"
echo "  output:    $out"
{
    echo "# regulab lecture experiments ($mode mode), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "# ratings: $mf_desc"
    echo "# images: ${mlp_desc:-none}"
} >>"$commands"

# ------------------------------------------------------------------------------ a

section "a. MF without regularization: Adam lr 0.01, K=16, $ep_a epochs"
train mf "${mf_data[@]}" --dim 16 --optimizer adam --lr 0.01 --epochs "$ep_a" --out "$runs/a-mf-none.json"
plot a-mf-overfit "a. MF, Adam lr 0.01, K=16, no regularization" "$runs/a-mf-none.json"
n_ratings="$(json_value "$runs/a-mf-none.json" 'd["dataset"]["split"]["train_ratings"]')"
echo "   test RMSE at the last epoch $(json_value "$runs/a-mf-none.json" '"%.4f; the curve'"'"'s minimum (chosen on test: not a result) %.4f in epoch %d" % (d["summary"]["final_test"]["rmse"], d["summary"]["oracle_best_test"]["value"], d["summary"]["oracle_best_test"]["epoch"])')"

# ------------------------------------------------------------------------------ b

section "b. MF with Adam weight decay (the slide: 1e-5 over 100 epochs), $ep_b epochs"
echo "   The slide's settings say Adam(lr = 0.01) and 'Weight decay: 10e-5' (= 1e-4); its code says"
echo "   lr = 0.001, weight_decay = 1e-5. Main run: lr 0.01 with 1e-5; the other readings beside it."
train mf "${mf_data[@]}" --optimizer adam --lr 0.01 --epochs "$ep_b" --out "$runs/b-mf-adam-wd0.json"
train mf "${mf_data[@]}" --optimizer adam --lr 0.01 --weight-decay 1e-5 --epochs "$ep_b" --out "$runs/b-mf-adam-wd1e-5.json"
train mf "${mf_data[@]}" --optimizer adam --lr 0.01 --weight-decay 1e-4 --epochs "$ep_b" --out "$runs/b-mf-adam-wd1e-4.json"
train mf "${mf_data[@]}" --optimizer adam --lr 0.001 --weight-decay 1e-5 --epochs "$ep_b" --out "$runs/b-mf-adam-lr0.001-wd1e-5.json"
plot b-mf-weight-decay "b. MF, Adam, weight decay (slide: 1e-5, lr 0.01)" \
    --labels "lr 0.01, no weight decay;lr 0.01, weight decay 1e-5 (slide settings);lr 0.01, weight decay 1e-4 (the slide's '10e-5');lr 0.001, weight decay 1e-5 (slide code)" \
    "$runs/b-mf-adam-wd0.json" "$runs/b-mf-adam-wd1e-5.json" "$runs/b-mf-adam-wd1e-4.json" \
    "$runs/b-mf-adam-lr0.001-wd1e-5.json"

# ------------------------------------------------------------------------------ c

sgd_wd=3e-4
adam_wd=1e-4
sgd_l2="$(times "$sgd_wd" "$n_ratings")"
adam_l2="$(times "$adam_wd" "$n_ratings")"
section "c. MF: explicit L2 penalty versus weight decay (SGD lr 10; Adam lr 0.01), $ep_c epochs"
echo "   Same strength w: --weight-decay w; --penalty l2 --penalty-scale none --lambda w --penalize-bias"
echo "   (the exact equivalent); --penalty l2 --lambda w*n (divided by n = $n_ratings ratings, factors only)."
train mf "${mf_data[@]}" --optimizer sgd --lr 10 --epochs "$ep_c" --out "$runs/c-mf-sgd-none.json"
train mf "${mf_data[@]}" --optimizer sgd --lr 10 --weight-decay "$sgd_wd" --epochs "$ep_c" --out "$runs/c-mf-sgd-wd.json"
train mf "${mf_data[@]}" --optimizer sgd --lr 10 --penalty l2 --penalty-scale none --lambda "$sgd_wd" \
    --penalize-bias --epochs "$ep_c" --out "$runs/c-mf-sgd-l2-exact.json"
train mf "${mf_data[@]}" --optimizer sgd --lr 10 --penalty l2 --lambda "$sgd_l2" --epochs "$ep_c" \
    --out "$runs/c-mf-sgd-l2.json"
plot c-mf-sgd-penalty-vs-wd "c. MF, SGD lr 10: L2 penalty vs weight decay $sgd_wd" \
    --labels "no regularization;--weight-decay $sgd_wd;--penalty l2 --penalty-scale none --lambda $sgd_wd --penalize-bias;--penalty l2 --lambda $sgd_l2 (divided by n, factors only)" \
    "$runs/c-mf-sgd-none.json" "$runs/c-mf-sgd-wd.json" "$runs/c-mf-sgd-l2-exact.json" "$runs/c-mf-sgd-l2.json"
train mf "${mf_data[@]}" --optimizer adam --lr 0.01 --epochs "$ep_c" --out "$runs/c-mf-adam-none.json"
train mf "${mf_data[@]}" --optimizer adam --lr 0.01 --weight-decay "$adam_wd" --epochs "$ep_c" --out "$runs/c-mf-adam-wd.json"
train mf "${mf_data[@]}" --optimizer adam --lr 0.01 --penalty l2 --penalty-scale none --lambda "$adam_wd" \
    --penalize-bias --epochs "$ep_c" --out "$runs/c-mf-adam-l2-exact.json"
train mf "${mf_data[@]}" --optimizer adam --lr 0.01 --penalty l2 --lambda "$adam_l2" --epochs "$ep_c" \
    --out "$runs/c-mf-adam-l2.json"
train mf "${mf_data[@]}" --optimizer adamw --lr 0.01 --weight-decay "$adam_wd" --epochs "$ep_c" --out "$runs/c-mf-adamw-wd.json"
plot c-mf-adam-penalty-vs-wd "c. MF, Adam lr 0.01: L2 penalty vs weight decay $adam_wd" \
    --labels "no regularization;--weight-decay $adam_wd;--penalty l2 --penalty-scale none --lambda $adam_wd --penalize-bias;--penalty l2 --lambda $adam_l2 (divided by n, factors only);AdamW --weight-decay $adam_wd (decoupled)" \
    "$runs/c-mf-adam-none.json" "$runs/c-mf-adam-wd.json" "$runs/c-mf-adam-l2-exact.json" "$runs/c-mf-adam-l2.json" \
    "$runs/c-mf-adamw-wd.json"
"$py" - "$runs" <<'EOF'
import json, os, sys
runs = sys.argv[1]
for opt in ("sgd", "adam"):
    a, b = (json.load(open(os.path.join(runs, f"c-mf-{opt}-{k}.json"))) for k in ("wd", "l2-exact"))
    diff = max(abs(x["test"]["rmse"] - y["test"]["rmse"]) for x, y in zip(a["epochs"], b["epochs"]))
    print(f"   {opt}: weight decay vs exact L2 penalty, largest test RMSE difference over the epochs: {diff:.2e}")
EOF

# ------------------------------------------------------------------------------ d

mlp_wd=1e-3
if [ ${#mlp_data[@]} -gt 0 ]; then
    section "d. MLP (512-256-128, Adam lr 0.001): L2 penalty versus weight decay; the slide's torch.norm snippet"
    train mlp "${mlp_data[@]}" "${mlp_d[@]}" --out "$runs/d-mlp-none.json"
    n_images="$(json_value "$runs/d-mlp-none.json" 'd["dataset"]["train_used"]')"
    mlp_l2="$(times "$mlp_wd" "$n_images")"
    train mlp "${mlp_data[@]}" "${mlp_d[@]}" --weight-decay "$mlp_wd" --out "$runs/d-mlp-wd.json"
    train mlp "${mlp_data[@]}" "${mlp_d[@]}" --penalty l2 --lambda "$mlp_l2" --out "$runs/d-mlp-l2.json"
    train mlp "${mlp_data[@]}" "${mlp_d[@]}" --penalty l2 --penalty-scale none --lambda "$mlp_wd" --penalize-bias \
        --out "$runs/d-mlp-l2-exact.json"
    plot d-mlp-penalty-vs-wd "d. MLP, Adam: L2 penalty vs weight decay $mlp_wd" \
        --labels "no regularization;--weight-decay $mlp_wd;--penalty l2 --lambda $mlp_l2 (divided by n, weights only);--penalty l2 --penalty-scale none --lambda $mlp_wd --penalize-bias" \
        "$runs/d-mlp-none.json" "$runs/d-mlp-wd.json" "$runs/d-mlp-l2.json" "$runs/d-mlp-l2-exact.json"
    echo "   The slide's snippet adds torch.norm(param) of every weight matrix: --penalty norm --lambda 1."
    train mlp "${mlp_data[@]}" "${mlp_d[@]}" --penalty norm --lambda 1 --out "$runs/d-mlp-norm1.json"
    train mlp "${mlp_data[@]}" "${mlp_d[@]}" --penalty norm --lambda 0.01 --out "$runs/d-mlp-norm0.01.json"
    plot d-mlp-norm "d. MLP, Adam: loss + lambda * sum torch.norm(W)" \
        --labels "no regularization;--penalty norm --lambda 1 (the slide's snippet);--penalty norm --lambda 0.01" \
        "$runs/d-mlp-none.json" "$runs/d-mlp-norm1.json" "$runs/d-mlp-norm0.01.json"
else
    section "d. MLP: skipped (no image data: pass --mnist DIR, or run \`regulab data fetch mnist\`)"
fi

# ------------------------------------------------------------------------------ e

section "e. MF: the MovieLens question's per-batch loss, --penalty batch-l2 --lambda 0.1, per step, $ep_e epochs"
train mf "${mf_data[@]}" --optimizer adam --lr 0.01 --penalty batch-l2 --lambda 0.1 --log-every 5 \
    --epochs "$ep_e" --out "$runs/e-mf-batch-l2.json"
plot e-mf-batch-l2 "e. MF, Adam lr 0.01, batch-l2 lambda 0.1 (the per-batch loss)" --steps "$runs/e-mf-batch-l2.json"
# The same question drawn by regulab itself: the regularization loss on its own axis.
settle
run_quietly "$regulab" plot --steps "$runs/e-mf-batch-l2.json" -o "$figs/e-mf-batch-l2-regulab.png"

# ------------------------------------------------------------------------------ f

if [ ${#mlp_data[@]} -gt 0 ]; then
    section "f. The quadratic-cost question: 784-30-10 sigmoid, quadratic cost, SGD lr 0.5, batch 10, L2 lambda 5"
    train mlp "${mlp_data[@]}" --hidden 30 --activation sigmoid --loss mse --optimizer sgd --lr 0.5 \
        --penalty l2 --lambda 5 --batch-size 10 "${mlp_f[@]}" --out "$runs/f-quadratic-cost.json"
    plot f-quadratic-cost "f. 784-30-10 sigmoid, quadratic cost, SGD, L2 lambda 5" "$runs/f-quadratic-cost.json"
    # regulab's own figure: the cost as trained and with the test set's divisor, and accuracy.
    run_quietly "$regulab" plot "$runs/f-quadratic-cost.json" -o "$figs/f-quadratic-cost-regulab.png"
    run_quietly "$py" "$eval_divisor_cost" "$runs/f-quadratic-cost.json" -o "$figs/f-quadratic-cost" --format "$formats" \
        --title "f. the cost divided by the test set's size vs the cost trained on"
    mv "$figs/f-quadratic-cost-eval-divisor.tsv" "$runs/f-quadratic-cost-costs.tsv"
    "$py" - "$runs/f-quadratic-cost-costs.tsv" <<'EOF'
import sys
rows = [l.split("\t") for l in open(sys.argv[1]) if not l.startswith("#")]
head, rows = rows[0], rows[1:]
col = {k.strip(): i for i, k in enumerate(head)}
first, last = rows[0], rows[-1]
get = lambda r, k: float(r[col[k]])
for k, name in (("test_accuracy", "test accuracy"), ("regulab_total", "regulab test total"),
                ("reported_cost", "cost divided by the test set's size"), ("reg_n", "L2 term (divisor n)")):
    print(f"   {name}: epoch {first[0]} {get(first, k):.4f} -> epoch {last[0]} {get(last, k):.4f}")
EOF
else
    section "f. The quadratic-cost question's network: skipped (no image data: pass --mnist DIR)"
fi

# ------------------------------------------------------------------------------ g

section "g. MF: batch-l2 lambda sweep $sweep_lambdas over seeds $sweep_seeds, $ep_g epochs"
run "$regulab" sweep mf "${mf_data[@]}" --optimizer adam --lr 0.01 --penalty batch-l2 --lambda "$sweep_lambdas" \
    --seed "$sweep_seeds" --epochs "$ep_g" --quiet "${mf_thread_args[@]}" --jobs "$jobs_n" --out "$sweep_dir"
run_quietly "$py" "$plot_curves" --sweep "$sweep_dir/summary.json" -o "$figs/g-mf-lambda-sweep" --format "$formats" \
    --title "g. MF, Adam lr 0.01: test RMSE against the batch-l2 lambda"

# ------------------------------------------------------------------------------ explain, report

section "What the curves say (regulab explain) and one interactive page (regulab report)"
show "$regulab" explain "$runs"/*.json
"$regulab" explain "$runs"/*.json >"$out/explain.txt"
warnings="$(grep -c '^warning' "$out/explain.txt" || true)"
notes="$(grep -c '^note' "$out/explain.txt" || true)"
echo "   $warnings warnings and $notes notes, each with its evidence and what to do: $out/explain.txt"
run "$regulab" report "$runs" "$sweep_dir" -o "$out/report.html"

# ------------------------------------------------------------------------------ done

elapsed=$((SECONDS - start_seconds))
printf '\n== done in %dm%02ds (%s mode); commands in %s\n' $((elapsed / 60)) $((elapsed % 60)) "$mode" "$commands"
echo "figures:"
find "$figs" -type f \( -name '*.png' -o -name '*.svg' \) | sort | sed 's/^/  /'
