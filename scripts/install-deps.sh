#!/usr/bin/env bash
# install-deps.sh: installs from Debian/Ubuntu packages what building the
# extension, running it, its tests (the packages' and the Dask module's too)
# and the demo need.
# With --dev, also the
# tools for checking and measuring it: clang with libFuzzer (make fuzz),
# clang-tidy and cppcheck (make lint), and SentencePiece (the interchange
# tests, skipped without it, and the benchmarks); .ci/run passes --dev.
# Runs apt-get as root, or through sudo.
#   scripts/install-deps.sh [--dev]
set -eu
dev=0
for argument in "$@"; do
  case $argument in
    --dev) dev=1 ;;
    *) echo "usage: install-deps.sh [--dev]" >&2; exit 2 ;;
  esac
done
packages=(
  build-essential      # cc, make, ld and objcopy (binutils)
  libsqlite3-dev       # sqlite3ext.h, for the extension
  sqlite3              # the shell, for the tour, the demo and the tests
  libutf8proc-dev      # Unicode NFC
  zlib1g-dev           # zipped model files, the built-in models
  tcl libsqlite3-tcl   # the test suite
  python3              # the demo trains on the Python standard library
  python3-numpy        # the token file reader (sqlite_bytepiece.tokens) and its tests
)
# Checking: clang with libFuzzer (make fuzz), clang-tidy and cppcheck (make
# lint).
check_packages=(clang libclang-rt-dev clang-tidy cppcheck)
# SentencePiece: the interchange tests (skipped without it) and the
# benchmarks.
benchmark_packages=(python3-sentencepiece sentencepiece)
# Packages (make python, make npm, make release) and their tests
# (tests/hosts/wheel_host.sh, npm_host.sh): a venv with pip for installing the
# wheel offline, sqlite-utils for its example. Node and npm are not installed
# from here: the npm test runs with whatever Node 20 the machine has.
package_packages=(python3-venv sqlite-utils)
# The Dask module, sqlite_bytepiece.distributed: its tests
# (tests/distributed.test, skipped without them) and make bench-train's
# cluster run.
dask_packages=(python3-dask python3-distributed)

as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${package_packages[@]}" >/dev/null ||
  echo "install-deps: python3-venv or sqlite-utils unavailable; the wheel's tests will be skipped"
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${dask_packages[@]}" >/dev/null ||
  echo "install-deps: python3-dask or python3-distributed unavailable; the Dask tests will be skipped"
if [ "$dev" = 1 ]; then
  "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${check_packages[@]}" >/dev/null ||
    echo "install-deps: clang, clang-tidy or cppcheck unavailable; make fuzz and make lint need them"
  "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${benchmark_packages[@]}" >/dev/null ||
    echo "install-deps: SentencePiece packages unavailable; the benchmarks will run without them"
fi
echo "install-deps: done"
