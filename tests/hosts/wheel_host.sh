#!/usr/bin/env bash
# wheel_host.sh: the wheel of make python, installed offline into a fresh
# virtual environment of Debian's /usr/bin/python3 (python3 -m venv, pip
# install --no-index), checked there (wheel_check.py, "wheel: ..."), then the
# README's examples with it ("python-examples: ..."): examples/python.py, the
# path in sqlite-utils (examples/sqlite_utils.sh), and, for each other
# python3 on PATH whose sqlite3 module cannot load extensions (pyenv's), the
# error load() gives there. A missing /usr/bin/python3, venv module or
# sqlite-utils is a skip that says so.
#   tests/hosts/wheel_host.sh
set -u
here=$(cd "$(dirname "$0")" && pwd)
project=$(cd "$here/../.." && pwd)
name=python-examples
. "$here/package_common.sh"
python=/usr/bin/python3
if [ ! -x "$python" ] || ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
  echo "skipped wheel: $python with the venv module (Debian: python3-venv) is not installed"
  echo "wheel: 0 passed, 0 failed, 1 skipped"
  exit 0
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
fail() {
  cat "$scratch/log"
  echo "FAILED wheel: $1"
  echo "wheel: 0 passed, 1 failed, 0 skipped"
  exit 1
}
make -s -C "$project" python >"$scratch/log" 2>&1 || fail "make python"
wheel=$(ls "$project"/dist/sqlite_bytepiece-*.whl)
"$python" -m venv "$scratch/venv" >"$scratch/log" 2>&1 || fail "python3 -m venv"
"$scratch/venv/bin/pip" install --no-index --no-cache-dir --quiet "$wheel" >"$scratch/log" 2>&1 ||
  fail "pip install --no-index $wheel"
# From outside the project, so that only the installed package can be imported.
(cd "$scratch" && "$scratch/venv/bin/python" "$here/wheel_check.py" "$wheel")
wheel_status=$?

# The examples, with the environment's python first on PATH, as after
# "source venv/bin/activate".
export PATH=$scratch/venv/bin:$PATH
so=$("$scratch/venv/bin/python" -c 'import sqlite_bytepiece; print(sqlite_bytepiece.loadable_path())')
golden='[37037,40950,36144,29161,30241,10177]'
example python.py "$scratch/python" "$so" "$golden
6
[37037, 40950, 36144, 29161, 30241, 10177]" python "$project/examples/python.py"
if command -v sqlite-utils >/dev/null; then
  example sqlite_utils.sh "$scratch/sqlite-utils" "$so" "[{\"ids\": \"$golden\"}]" bash "$project/examples/sqlite_utils.sh"
else
  skipped=$((skipped + 1))
  echo "skipped python-examples sqlite_utils.sh: sqlite-utils is not installed (Debian: sqlite-utils)"
fi
site=$("$scratch/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
IFS=: read -ra path_dirs <<<"$PATH"
for dir in "${path_dirs[@]}"; do
  other=$dir/python3
  [ -x "$other" ] && [ "$(readlink -f "$other")" != "$(readlink -f "$python")" ] || continue
  [ "$dir" = "$scratch/venv/bin" ] && continue
  "$other" -c 'import sqlite3, sys; sys.exit(hasattr(sqlite3.Connection, "enable_load_extension"))' 2>/dev/null ||
    continue
  check "load() in $other" "$(PYTHONPATH=$site "$other" -c '
import sqlite3, sqlite_bytepiece
try:
    sqlite_bytepiece.load(sqlite3.connect(":memory:"))
except RuntimeError as e:
    print(e)' 2>&1)" "sqlite_bytepiece.load: this Python's sqlite3 module cannot load extensions (it was built without --enable-loadable-sqlite-extensions); use a Python that can, such as Debian's or Ubuntu's /usr/bin/python3, or rebuild it with that option (pyenv: PYTHON_CONFIGURE_OPTS=--enable-loadable-sqlite-extensions)"
done
summary
[ "$wheel_status" -eq 0 ] && [ "$failed" -eq 0 ]
