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

# The examples use the model bytepiece_80k by name and print its golden ids.
# prepare_database DATABASE EXTENSION: when the extension has no built-in
# bytepiece_80k, stores the published model from ../shared (or
# $SHARED_DATA) in DATABASE under that name, so the examples run unchanged;
# when the model is built in, does nothing. Returns 1 when it is neither built
# in nor at hand, and the caller skips what needs it, saying so.
published=${SHARED_DATA:-$project/../shared}/models/bytepiece_80k.zip
no_model_reason="bytepiece_80k is not built in and $published is absent"
prepare_database() {
  if sqlite3 :memory: ".load $2" "SELECT bp_encode('', 'bytepiece_80k')" >/dev/null 2>&1; then
    return 0
  fi
  [ -f "$published" ] || return 1
  # The one line to delete once the published models are built in:
  sqlite3 "$1" ".load $2" "INSERT INTO bp_models(name, model) VALUES('bytepiece_80k', bp_model_load('$published'))"
}

# example FILE DIR EXTENSION EXPECTED COMMAND...: runs the example
# examples/FILE with COMMAND in the fresh folder DIR (its database docs.db
# prepared with EXTENSION) and compares what it prints, stdout and stderr, with
# EXPECTED. Without the model, one skip.
example() {
  local file=$1 dir=$2 extension=$3 expected=$4
  shift 4
  mkdir -p "$dir"
  if ! prepare_database "$dir/docs.db" "$extension"; then
    skipped=$((skipped + 1))
    echo "skipped $name example $file: $no_model_reason"
    return 0
  fi
  check "example $file" "$(cd "$dir" && "$@" 2>&1)" "$expected"
}
