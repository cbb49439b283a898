#!/usr/bin/env bash
# Installs what regulab needs beside Rust: a project-local Python venv with the
# official torch==2.11.0 wheel (libtorch for tch 0.24) plus the Python tools used
# by the tests and scripts, and a stable link `.libtorch` to the wheel's torch folder
# that .cargo/config.toml points LIBTORCH at. Safe to run again: it only installs
# what is missing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

TORCH_VERSION="2.11.0"
# safetensors: the tests load regulab's saved models in Python, as users would.
PY_PACKAGES=("torch==${TORCH_VERSION}" "numpy" "matplotlib" "safetensors")
venv="$root/.venv"
python="$venv/bin/python"

if ! command -v python3 >/dev/null 2>&1; then
  echo "setup: python3 is required (to install the torch ${TORCH_VERSION} wheel)" >&2
  exit 1
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo is required (install Rust from rustup)" >&2
  exit 1
fi

if [ ! -x "$python" ]; then
  echo "setup: creating $venv"
  python3 -m venv "$venv"
fi

have_all() {
  "$python" - "$TORCH_VERSION" <<'PY' 2>/dev/null
import sys, importlib.metadata as md
want = sys.argv[1]
try:
    ok = md.version("torch").split("+")[0] == want
    md.version("numpy"); md.version("matplotlib"); md.version("safetensors")
except md.PackageNotFoundError:
    ok = False
sys.exit(0 if ok else 1)
PY
}

if have_all; then
  echo "setup: torch ${TORCH_VERSION}, numpy, matplotlib, safetensors already in .venv"
else
  echo "setup: installing ${PY_PACKAGES[*]} into .venv (about 5 GB with the CUDA libraries; a few minutes)"
  "$python" -m pip install --quiet --disable-pip-version-check "${PY_PACKAGES[@]}"
fi

torch_dir="$("$python" -c 'import os, torch; print(os.path.dirname(torch.__file__))')"
if [ ! -f "$torch_dir/lib/libtorch_cpu.so" ]; then
  echo "setup: $torch_dir/lib/libtorch_cpu.so is missing; the torch wheel looks broken" >&2
  exit 1
fi
ln -sfn "$torch_dir" "$root/.libtorch"
echo "setup: libtorch ${TORCH_VERSION} linked at .libtorch -> $torch_dir"

# `regulab plot` draws text with a TrueType font from the system (or $REGULAB_FONT).
have_font() {
  [ -n "${REGULAB_FONT:-}" ] && [ -f "$REGULAB_FONT" ] && return 0
  find /usr/share/fonts /usr/local/share/fonts "$HOME/.local/share/fonts" /Library/Fonts /System/Library/Fonts \
    \( -iname '*.ttf' -o -iname '*.otf' \) -print -quit 2>/dev/null | grep -q .
}
if ! have_font; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "setup: installing fonts-dejavu-core (for regulab plot)"
    (apt-get install -y -qq fonts-dejavu-core >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq fonts-dejavu-core >/dev/null 2>&1; }) ||
      echo "setup: could not install fonts-dejavu-core; regulab plot needs a .ttf font (or REGULAB_FONT=/path/font.ttf)" >&2
  else
    echo "setup: no TrueType font found; regulab plot needs one (install fonts-dejavu-core, or set REGULAB_FONT=/path/font.ttf)" >&2
  fi
fi

# tests/html_report.rs opens `regulab report` pages in a headless Chromium (Debian's package).
have_chromium() {
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 ||
    command -v google-chrome >/dev/null 2>&1
}
if ! have_chromium; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "setup: installing chromium (headless, for the regulab report test; about 300 MB)"
    (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1; }) ||
      echo "setup: could not install chromium; tests/html_report.rs needs it (apt-get install chromium)" >&2
  else
    echo "setup: no chromium found; tests/html_report.rs needs it (install Debian's chromium package)" >&2
  fi
fi
