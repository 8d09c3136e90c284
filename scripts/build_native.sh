#!/usr/bin/env bash
# Build the wheel of slm-curator-native (native/: the filter stage's compiled kernels, in Rust) once per
# source and machine, and print its path. One abi3 wheel serves every CPython >= 3.10 on the platform
# it was built on (build on Linux x86_64 with glibc <= the cluster's for DBR and EMR nodes).
# Needs cargo (Rust, e.g. from rustup); without one it says so and exits 3: the filter stage then
# runs its Python engine, with the same results, slower (README, "Filters").
#   usage: scripts/build_native.sh [PYTHON]      (PYTHON: one with pip; default python3)
set -euo pipefail
cd "$(dirname "$0")/.."
python_bin="${1:-${PYTHON:-python3}}"
# rustup's cargo finds its toolchains through RUSTUP_HOME (default ~/.rustup). Under another HOME (a
# fresh CI HOME) try the account's own install, where rustup puts it by default: ~/.cargo/bin and
# ~/.rustup of the passwd home (as Java finds its home).
if ! cargo --version >/dev/null 2>&1; then
  passwd_home="$(getent passwd "$(id -u)" 2>/dev/null | cut -d: -f6 || true)"
  if [ -n "$passwd_home" ] && [ -x "$passwd_home/.cargo/bin/cargo" ]; then
    export PATH="$passwd_home/.cargo/bin:$PATH"
    if [ -z "${RUSTUP_HOME:-}" ] && [ ! -d "$HOME/.rustup" ] && [ -d "$passwd_home/.rustup" ]; then
      export RUSTUP_HOME="$passwd_home/.rustup"
    fi
  fi
fi
if ! cargo --version >/dev/null 2>&1; then
  echo "build_native: no working cargo (Rust toolchain) on PATH, so no compiled kernels; the filter stage runs its Python engine (same results, slower)" >&2
  exit 3
fi
key="$(cat native/Cargo.toml native/Cargo.lock native/pyproject.toml native/src/*.rs <(uname -sm) <(cargo --version) | cksum | cut -d' ' -f1)"
wheels="${XDG_CACHE_HOME:-$HOME/.cache}/slm-curator/native-wheels/$key"
if ! ls "$wheels"/slm_curator_native-*.whl >/dev/null 2>&1; then
  echo "build_native: compiling slm-curator-native with $(cargo --version | cut -d' ' -f1-2) (about a minute the first time)" >&2
  rm -rf "$wheels.tmp" && mkdir -p "$wheels.tmp"
  # --locked: the crate versions in native/Cargo.lock, as tested.
  MATURIN_PEP517_ARGS="--locked" "$python_bin" -m pip wheel --quiet --no-deps --wheel-dir "$wheels.tmp" ./native >&2
  rm -rf "$wheels" && mv "$wheels.tmp" "$wheels"
fi
ls "$wheels"/slm_curator_native-*.whl
