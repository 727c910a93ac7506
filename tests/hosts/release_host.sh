#!/usr/bin/env bash
# release_host.sh: the prebuilt archives of make release, used as a user
# would. Checks SHA256SUMS and the archives' contents (the loadable library
# self-contained: no utf8proc to install), then runs the README's examples
# with them: the sqlite3 shell (examples/shell.sh), Tcl (examples/tcl.tcl),
# loading a JSONL and a CSV corpus (examples/load_corpus.sh) with the loadable
# bytepiece.so, and C (examples/static.c) compiled with the command in its
# header against the static archive. Prints
# "release: N passed, N failed, N skipped".
#   tests/hosts/release_host.sh
set -u
here=$(cd "$(dirname "$0")" && pwd)
project=$(cd "$here/../.." && pwd)
name=release
. "$here/package_common.sh"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

if ! make -s -C "$project" release >"$scratch/make.log" 2>&1; then
  cat "$scratch/make.log"
  echo "FAILED release: make release"
  failed=1
  summary
  exit 1
fi
version=$(sed -n 's/^#define BP_VERSION "\(.*\)"/\1/p' "$project/src/bytepiece.h")
dist=$project/dist
loadable=bytepiece-sqlite-$version-loadable-linux-$(uname -m).tar.gz
static=bytepiece-sqlite-$version-static-linux-$(uname -m).tar.gz
check "SHA256SUMS" "$(cd "$dist" && sha256sum -c SHA256SUMS 2>&1)" "$loadable: OK
$static: OK"
licences=$(cd "$project" && ls LICENSE NOTICE 2>/dev/null)
check "loadable contents" "$(tar -tzf "$dist/$loadable" | sort)" "$(printf '%s\n' bytepiece.so $licences | sort)"
check "static contents" "$(tar -tzf "$dist/$static" | sort)" \
  "$(printf '%s\n' bytepiece.h libbytepiece.a libsqlite3_bytepiece.a sqlite3_bytepiece.h $licences | sort)"
mkdir "$scratch/loadable" "$scratch/static"
tar -xzf "$dist/$loadable" -C "$scratch/loadable"
tar -xzf "$dist/$static" -C "$scratch/static"
so=$scratch/loadable/bytepiece.so
check "needs only glibc and zlib" \
  "$(readelf -dW "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | grep -Ev '^(libc|libm|libz)\.so\.[0-9]+$')" ""

# example FILE DIR EXTENSION EXPECTED COMMAND... (package_common.sh); each in
# a folder holding the loadable library, as a user's would.
in_folder() {
  mkdir -p "$scratch/$1"
  ln -s "$so" "$scratch/$1/bytepiece.so"
  echo "$scratch/$1"
}
golden='[37037,40950,36144,29161,30241,10177]'
english='[5702,62211,11289,15183,55899]'
if command -v sqlite3 >/dev/null; then
  dir=$(in_folder shell)
  example shell.sh "$dir" "$so" "$golden
今天天气不错 hello world 123
0|5702|The
1|62211| weather
2|11289| is 
3|15183|fine
4|55899| today." bash "$project/examples/shell.sh"

  dir=$(in_folder corpus)
  ln -s "$project/sql" "$dir/sql"
  printf '%s\n' '{"text": "今天天气不错"}' '{"text": "hello world 123", "id": 2}' >"$dir/corpus.jsonl"
  printf '%s\r\n' 'title,body' 'weather,"The weather is fine today."' 'greeting,"hello, world"' >"$dir/notes.csv"
  example load_corpus.sh "$dir" "$so" "2|7
weather|5
greeting|4" bash "$project/examples/load_corpus.sh"

  dir=$(in_folder tcl)
  example tcl.tcl "$dir" "$so" "$english
5702 {The}
62211 { weather}
11289 { is }
15183 {fine}
55899 { today.}" tclsh "$project/examples/tcl.tcl"

  # The C example, built with the command its header gives, from the static
  # archive's folder.
  cp "$project/examples/static.c" "$scratch/static/"
  build=$(sed -n 's/^\*\*   \(cc .*\)$/\1/p' "$project/examples/static.c")
  check "static.c build command" "$(cd "$scratch/static" && $build 2>&1 && echo built)" built
  mkdir "$scratch/c"
  example static.c "$scratch/c" "$so" "$golden" "$scratch/static/static"
else
  skipped=$((skipped + 1))
  echo "skipped release examples: the sqlite3 shell is not installed"
fi
summary
