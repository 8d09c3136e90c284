# Sourced by the scripts that install with uv (bootstrap.sh, emr_package.sh). uv reads no pip
# configuration, so `uv_options PYTHON` prints pip's as uv flags, one word a line: the index, extra
# indexes, find-links folders and certificate bundle that PYTHON's pip would use (its config files and
# PIP_* variables, from `pip config list`). Callers add --system-certs (pip's truststore trusts the
# system's store too) and install with pip, after saying why, should uv still fail.
uv_options() {
  "$1" - <<'PY'
import ast, subprocess, sys
listing = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
flags = {"index-url": "--index-url", "extra-index-url": "--extra-index-url", "find-links": "--find-links", "cert": "--cert"}
found = {}  # name -> (precedence, values): PIP_* variables over config files, [install] over [global]
for line in listing.splitlines():
    key, _, value = line.partition("=")
    section, _, name = key.rpartition(".")
    if name in flags and value:
        rank = 2 if section == ":env:" else 1 if section == "install" else 0
        if rank >= found.get(name, (-1,))[0]:
            found[name] = (rank, ast.literal_eval(value).split())
for name, (_, values) in found.items():
    for v in values if name in ("extra-index-url", "find-links") else values[:1]:
        print(flags[name]); print(v)
PY
}
