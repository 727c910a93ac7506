#!/usr/bin/env bash
# install-deps.sh: installs what building, testing, the demo and the
# benchmarks need, from Debian/Ubuntu packages. Run as root or with sudo.
set -eu
packages=(
  build-essential      # cc, make
  libsqlite3-dev       # sqlite3ext.h, for the extension
  sqlite3              # the shell, for the demo and benchmarks
  libutf8proc-dev      # Unicode NFC
  zlib1g-dev           # reading zipped model files
  tcl libsqlite3-tcl   # the test suite
  python3 python3-sentencepiece  # SentencePiece, for the benchmarks
)
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
echo "install-deps: done"
