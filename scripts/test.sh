#!/usr/bin/env bash
# The whole test suite from a fresh clone: installs what is missing, then runs
# formatting, lint and every test (unit, integration, parity with Python PyTorch).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
cargo fmt --check
cargo clippy --all-targets --release -- -D warnings
cargo test --release
