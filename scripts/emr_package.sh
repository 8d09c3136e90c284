#!/usr/bin/env bash
# Build the Python environment EMR runs the jobs with: a fresh venv holding the slm-curator wheel and its
# pinned dependencies (constraints.txt; constraints-3.5.txt with SLM_SPARK_LINE=3.5 for EMR 7.x), packed
# with venv-pack into one relocatable archive. EMR's Spark brings pyspark (and Delta's jars), so pyspark
# is left out unless --with-pyspark is given.
#
#   usage: [SLM_SPARK_LINE=3.5] scripts/emr_package.sh [--with-pyspark] [--compress-level N] [OUTPUT.tar.gz]
#   then:  aws s3 cp dist/slm_curator_emr.tar.gz s3://bucket/envs/   (spark-submit line: README, "Running on EMR")
#
# Build it on the same OS and Python minor version as the cluster (EMR 8.1: Amazon Linux 2023,
# Python 3.11), e.g. in an amazonlinux:2023 container, because wheels with C code are platform-specific.
# The packages go in through uv (pinned in the constraints files; pip's index and certificates carried
# over) unless SLM_INSTALLER=pip: the same versions, about 30 s sooner. uv and the build tools are
# removed before packing. The filter stage's compiled kernels (slm-curator-native) go in when cargo works
# (scripts/build_native.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/spark_line.sh
source scripts/uv_options.sh
installer="${SLM_INSTALLER:-uv}"
case "$installer" in
  uv|pip) ;;
  *) echo "emr_package: SLM_INSTALLER=$installer is not an installer; allowed values: uv, pip" >&2; exit 2 ;;
esac
with_pyspark=0
level=4
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --with-pyspark) with_pyspark=1 ;;
    --compress-level) shift; level="$1" ;;
    -h|--help) sed -n 2,14p "$0"; exit 0 ;;
    *) out="$1" ;;
  esac
  shift
done
out="${out:-dist/slm_curator_emr.tar.gz}"
python_bin="${PYTHON:-python3.11}"
command -v "$python_bin" >/dev/null || { echo "emr_package: $python_bin not found (set PYTHON)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "emr_package: building the wheel (Spark $SLM_SPARK_LINE line, $SLM_CONSTRAINTS)"
"$python_bin" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --upgrade "pip>=24"
tools=(build venv-pack setuptools wheel)
[ "$installer" = uv ] && tools+=(uv)
"$work/venv/bin/python" -m pip install --quiet --constraint "$SLM_CONSTRAINTS" "${tools[@]}"
# pip_install ARGS...: the pinned packages into the venv, by uv (copied out of its cache, no .pyc
# files) or by pip with --no-compile. No .pyc in the archive: a third smaller and faster to pack;
# Python compiles what each container imports, once.
pip_install() {
  if [ "$installer" = uv ]; then
    local options=()
    while IFS= read -r line; do options+=("$line"); done < <(uv_options "$work/venv/bin/python")
    # The cache bootstrap.sh chose when uv's own was on another filesystem: warm, not a second download.
    if [ -z "${UV_CACHE_DIR:-}" ] && [ -d .uv-cache ]; then options+=(--cache-dir "$PWD/.uv-cache"); fi
    if "$work/venv/bin/uv" pip install --quiet --system-certs --link-mode copy --python "$work/venv/bin/python" \
      ${options[@]+"${options[@]}"} --constraint "$SLM_CONSTRAINTS" "$@"; then
      return
    fi
    echo "emr_package: uv could not install (above); installing with pip instead (SLM_INSTALLER=pip skips uv)" >&2
  fi
  "$work/venv/bin/python" -m pip install --quiet --no-compile --constraint "$SLM_CONSTRAINTS" "$@"
}
"$work/venv/bin/python" -m build --wheel --no-isolation --outdir "$work/dist" . >/dev/null
wheel="$(ls "$work"/dist/slm_curator-*.whl)"
echo "emr_package: installing $(basename "$wheel") and its pinned dependencies"
# The wheel's own requirements, minus pyspark unless asked: the cluster's pyspark (4.1.1) comes first on
# PYTHONPATH. delta-spark (pure Python, 4.2.0 like EMR's bundled jars) goes in without its pyspark pin.
"$work/venv/bin/python" - "$wheel" "$with_pyspark" > "$work/requirements.txt" <<'PY'
import sys, zipfile
wheel, keep_pyspark = sys.argv[1], sys.argv[2] == "1"
archive = zipfile.ZipFile(wheel)
meta = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
for line in archive.read(meta).decode().splitlines():
    if line.startswith("Requires-Dist:") and "extra ==" not in line:
        req = line.split(":", 1)[1].strip()
        if keep_pyspark or not req.lower().startswith(("pyspark", "delta-spark")):
            print(req)
PY
pip_install --requirement "$work/requirements.txt"
pip_install --no-deps "$wheel" delta-spark
# The filter stage's compiled kernels, when cargo works here (else the Python engine runs there: same results).
if native_wheel="$(scripts/build_native.sh "$work/venv/bin/python")"; then
  pip_install --no-deps "$native_wheel"
fi
remove=(build)
[ "$installer" = uv ] && remove+=(uv)
"$work/venv/bin/python" -m pip uninstall --quiet --yes "${remove[@]}"
mkdir -p "$(dirname "$out")"
rm -f "$out"
echo "emr_package: packing with venv-pack (compress level $level)"
"$work/venv/bin/venv-pack" -p "$work/venv" -o "$out" --compress-level "$level"
echo "emr_package: wrote $out ($(du -h "$out" | cut -f1))"
