# shellcheck shell=bash
# package_common.sh: sourced by the package runners (release_host.sh,
# wheel_host.sh, npm_host.sh): counting checks, running the README's
# examples (examples/) in scratch folders, and the model their golden ids
# need. Needs $project (the project folder) and $name (the summary's name).
passed=0
failed=0
skipped=0

# check WHAT GOT EXPECTED
check() {
  if [ "$2" = "$3" ]; then passed=$((passed + 1))
  else
    failed=$((failed + 1))
    printf 'FAILED %s %s\n  expected: %s\n  got:      %s\n' "$name" "$1" "$3" "$2"
  fi
}

summary() {
  echo "$name: $passed passed, $failed failed, $skipped skipped"
  [ "$failed" -eq 0 ]
}

# The examples use the built-in model bytepiece_80k by name and print its
# golden ids. has_builtin_model EXTENSION: whether the extension has it.
has_builtin_model() {
  sqlite3 :memory: ".load $1" "SELECT bp_encode('', 'bytepiece_80k')" >/dev/null 2>&1
}

# example FILE DIR EXTENSION EXPECTED COMMAND...: runs the example
# examples/FILE with COMMAND in the fresh folder DIR (its database docs.db
# prepared with EXTENSION) and compares what it prints, stdout and stderr, with
# EXPECTED. An extension without the built-in model fails.
example() {
  local file=$1 dir=$2 extension=$3 expected=$4
  shift 4
  mkdir -p "$dir"
  if ! has_builtin_model "$extension"; then
    failed=$((failed + 1))
    echo "FAILED $name example $file: $extension has no built-in bytepiece_80k"
    return 0
  fi
  check "example $file" "$(cd "$dir" && "$@" 2>&1)" "$expected"
}
