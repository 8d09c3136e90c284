#!/usr/bin/env bash
# Set-up shared by scripts/run.sh and scripts/test.sh: a project virtual environment with the pinned
# versions (constraints.txt, or constraints-3.5.txt with SLM_SPARK_LINE=3.5) and the JVM jars resolved
# into the Ivy cache. Each step is skipped when already done, so the second call costs about a second.
#   usage: [SLM_SPARK_LINE=3.5] scripts/bootstrap.sh [extras]        e.g. scripts/bootstrap.sh dev
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/spark_line.sh
# The project goes in through uv (pinned in the constraints files) unless SLM_INSTALLER=pip. Same
# constraints, same versions as pip, in about a minute instead of several; and uv hardlinks packages
# from its cache, so the other Spark line's venv shares torch and its CUDA libraries (~4.5 GB) with the
# first instead of holding a second copy.
installer="${SLM_INSTALLER:-uv}"
case "$installer" in
  uv|pip) ;;
  *) echo "bootstrap: SLM_INSTALLER=$installer is not an installer; allowed values: uv, pip" >&2; exit 2 ;;
esac
extras="${1:-}"
venv="$SLM_VENV"
constraints="$SLM_CONSTRAINTS"

python_bin="${PYTHON:-}"
if [ -z "$python_bin" ]; then
  for candidate in python3.11 python3.12 python3.10 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python_bin="$candidate"; break; fi
  done
fi
[ -n "$python_bin" ] || { echo "bootstrap: no python3 found (need Python 3.10-3.12)" >&2; exit 1; }
command -v java >/dev/null 2>&1 || { echo "bootstrap: no java on PATH (need Java 17 for Spark 4.1)" >&2; exit 1; }
java_major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)
if [ "${java_major:-0}" -lt 17 ]; then echo "bootstrap: Java ${java_major} found; Spark 4.1 needs Java 17+" >&2; exit 1; fi

if [ ! -x "$venv/bin/python" ]; then
  echo "bootstrap: creating $venv with $python_bin"
  "$python_bin" -m venv "$venv"
fi

# llama-cpp-python (the judge extra) builds llama.cpp from source: text models only, no multimodal
# library, examples, tests or C++ tools, which roughly halves the build (about 5 minutes on 2 cores).
# Portable x86-64 (AVX2/FMA/F16C) instead of -march=native: a native build on a CPU with AMX tiles
# segfaults in llama_decode under this VM, and pip's wheel cache would carry a native build to
# other CPUs. (On other architectures ggml ignores the x86 flags.)
export CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}"

hash="$(cat "$constraints" setup.cfg pyproject.toml | cksum | cut -d' ' -f1)"
stamp="$venv/.slm-installed-$hash-${extras:-base}"
# An install with more extras (the tests' dev,train,judge) also serves a call that asks for fewer.
covered() {
  local have
  for done_stamp in "$venv"/.slm-installed-"$hash"-*; do
    [ -f "$done_stamp" ] || continue
    have=",${done_stamp##*-},"
    local all=1
    for want in ${extras//,/ }; do case "$have" in *",$want,"*) ;; *) all=0 ;; esac; done
    [ "$all" = 1 ] && return 0
  done
  return 1
}

# pip's wheel cache keys a wheel built from an sdist by name and version, not by CMAKE_ARGS, so a
# brand-new venv could be handed a llama.cpp built natively elsewhere (it segfaults here). The wheel
# is built once per flags, Python and machine into a folder named by them, without pip's cache.
llama_version="$(sed -n 's/^llama_cpp_python==//p' "$constraints")"
llama_key="$(printf '%s|%s|%s|%s' "$CMAKE_ARGS" "$llama_version" "$("$venv/bin/python" -c 'import sys; print(sys.version_info[:2])')" "$(uname -m)" | cksum | cut -d' ' -f1)"
llama_stamp="$venv/.slm-llama-$llama_key"
llama_wheels="${XDG_CACHE_HOME:-$HOME/.cache}/slm-curator/llama-wheels/$llama_key"
install_llama() {
  if ! ls "$llama_wheels"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    echo "bootstrap: building llama-cpp-python $llama_version with CMAKE_ARGS=$CMAKE_ARGS (about 5 minutes)"
    mkdir -p "$llama_wheels.tmp"
    "$venv/bin/python" -m pip wheel --quiet --no-cache-dir --no-deps --no-binary llama_cpp_python \
      --wheel-dir "$llama_wheels.tmp" "llama_cpp_python==$llama_version"
    rm -rf "$llama_wheels" && mv "$llama_wheels.tmp" "$llama_wheels"
  fi
  "$venv/bin/python" -m pip install --quiet --no-cache-dir --force-reinstall --no-deps "$llama_wheels"/llama_cpp_python-*.whl
  rm -f "$venv"/.slm-llama-*
  touch "$llama_stamp"
}
wants_judge=0
case ",$extras," in *",judge,"*) wants_judge=1 ;; esac

source scripts/uv_options.sh  # uv_options PYTHON: pip's index, find-links and certificates as uv flags
install_project() {
  if [ "$installer" = uv ]; then
    "$venv/bin/python" -m pip install --quiet --constraint "$constraints" uv
    local options=()
    while IFS= read -r line; do options+=("$line"); done < <(uv_options "$venv/bin/python")
    # Hardlinks cannot cross filesystems: with uv's cache on another one than the venv, uv would copy
    # every package and keep the cache too (more disk than pip). The project's own .uv-cache then.
    if [ -z "${UV_CACHE_DIR:-}" ] && ! "$venv/bin/python" - "$("$venv/bin/uv" cache dir)" "$venv" <<'PY'
import os, sys
def device(path):
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return os.stat(path).st_dev
sys.exit(device(os.path.abspath(sys.argv[1])) != device(os.path.abspath(sys.argv[2])))
PY
    then
      echo "bootstrap: uv's cache is on another filesystem than $venv; using .uv-cache (hardlinks need one)"
      options+=(--cache-dir "$PWD/.uv-cache")
    fi
    # ${options[@]+...}: an empty array is "unbound" to `set -u` in bash before 4.4 (macOS's 3.2).
    if "$venv/bin/uv" pip install --quiet --system-certs --python "$venv/bin/python" ${options[@]+"${options[@]}"} \
      --constraint "$constraints" --editable ".${extras:+[$extras]}"; then
      return
    fi
    echo "bootstrap: uv could not install (above); installing with pip instead (SLM_INSTALLER=pip skips uv)" >&2
  fi
  "$venv/bin/python" -m pip install --quiet --constraint "$constraints" --editable ".${extras:+[$extras]}"
}

if ! covered; then
  if [ "$wants_judge" = 1 ]; then eta="first run: about 7 minutes, most of it building llama.cpp"; else eta="first run: a minute or two"; fi
  echo "bootstrap: installing slm-curator${extras:+[$extras]} for Spark $SLM_SPARK_LINE with pinned versions ($eta)"
  "$venv/bin/python" -m pip install --quiet --upgrade "pip>=24"
  if [ "$wants_judge" = 1 ] && [ ! -f "$llama_stamp" ]; then install_llama; fi
  install_project
  rm -f "$venv"/.slm-installed-*
  touch "$stamp"
fi
# A venv whose llama.cpp came from other flags (an older bootstrap's native build, or pip's cache)
# gets the wheel built with these.
if [ ! -f "$llama_stamp" ] && "$venv/bin/python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('llama_cpp') is None)" 2>/dev/null; then
  install_llama
fi

# The filter stage's compiled kernels (native/, Rust): built once per source into a wheel cache and
# installed when cargo works here; otherwise the Python engine runs (same results, slower).
if native_wheel="$(scripts/build_native.sh "$venv/bin/python")"; then
  native_stamp="$venv/.slm-native-$(printf '%s' "$native_wheel" | cksum | cut -d' ' -f1)"
  if [ ! -f "$native_stamp" ]; then
    "$venv/bin/python" -m pip install --quiet --no-deps --force-reinstall "$native_wheel"
    rm -f "$venv"/.slm-native-*
    touch "$native_stamp"
  fi
fi

if ! "$venv/bin/python" -m slm_curator.spark --check >/dev/null 2>&1; then
  echo "bootstrap: resolving JVM packages from Maven Central into the Ivy cache"
  "$venv/bin/python" -m slm_curator.spark --warm
fi
