#!/usr/bin/env bash
# install-deps.sh: installs what building, testing and the demo need, and
# what the benchmarks compare against, from Debian/Ubuntu packages. Runs
# apt-get as root, or through sudo.
set -eu
packages=(
  build-essential      # cc, make
  libsqlite3-dev       # sqlite3ext.h, for the extension
  sqlite3              # the shell, for the demo and benchmarks
  libutf8proc-dev      # Unicode NFC
  zlib1g-dev           # reading zipped model files
  tcl libsqlite3-tcl   # the test suite
  python3              # the demo trains on the Python standard library
)
# SentencePiece, for `make bench` and `make bench-train` only.
benchmark_packages=(python3-sentencepiece sentencepiece)

as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${benchmark_packages[@]}" >/dev/null ||
  echo "install-deps: SentencePiece packages unavailable; the benchmarks will run without them"
echo "install-deps: done"
