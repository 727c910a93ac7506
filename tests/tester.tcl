# tester.tcl: a small test harness in the style of SQLite's test/tester.tcl.
#
#   do_test NAME SCRIPT EXPECTED
#   do_execsql_test NAME SQL EXPECTED     ;# compares the rows as a Tcl list
#   do_catchsql_test NAME SQL {1 {exact error message}}
#
# Each test file sources this, opens databases with bp_open, and is run by
# all.tcl, which prints the totals.
package require sqlite3

if {![info exists ::passed]} {
  set ::passed 0
  set ::failed 0
  set ::skipped 0
}
set ::test_dir [file dirname [file normalize [info script]]]
set ::project_dir [file dirname $::test_dir]
if {![info exists ::extension]} {
  set ::extension [file join $::project_dir bytepiece]
}
if {[info exists ::env(SHARED_DATA)]} {
  set ::shared [file normalize $::env(SHARED_DATA)]
} else {
  set ::shared [file normalize [file join $::project_dir .. shared]]
}
set ::have_shared [file isdirectory [file join $::shared golden]]

proc report_failure {name expected got} {
  incr ::failed
  puts "FAILED $name"
  puts "  expected: [string range $expected 0 600]"
  puts "  got:      [string range $got 0 600]"
}

proc do_test {name script expected} {
  if {[catch {uplevel #0 $script} got]} {
    set got [list error $got]
  }
  if {$got eq $expected} {
    incr ::passed
  } else {
    report_failure $name $expected $got
  }
}

proc do_execsql_test {name sql expected} {
  if {[catch {uplevel #0 [list db eval $sql]} got]} {
    report_failure $name $expected [list error $got]
    return
  }
  if {$got eq [list {*}$expected]} {
    incr ::passed
  } else {
    report_failure $name [list {*}$expected] $got
  }
}

proc do_catchsql_test {name sql expected} {
  set rc [catch {uplevel #0 [list db eval $sql]} message]
  set got [list $rc $message]
  if {$got eq $expected} {
    incr ::passed
  } else {
    report_failure $name $expected $got
  }
}

# Skips the rest of a file when something it needs is missing.
proc skip_file {why} {
  incr ::skipped
  puts "skipped [file tail [info script]]: $why"
  return -code return
}

# Counts and reports one skipped part of a file (the caller leaves it out).
proc skip_tests {what why} {
  incr ::skipped
  puts "skipped [file tail [info script]]: $what: $why"
}

# Opens a database as `name` (default db) with the extension loaded.
proc bp_open {{name db} {file :memory:}} {
  sqlite3 $name $file
  $name enable_load_extension 1
  $name eval {SELECT load_extension($::extension)}
  return $name
}

proc model_path {name} {
  return [file join $::shared models $name]
}

# Loads a JSONL file's "text" fields (the file optionally gzipped) into
# TABLE(n, text), n from 1. Lines are kept as bytes (Tcl 8.6 would turn astral
# characters into surrogates), and SQLite's JSON functions, which stop at
# U+0000, see a stand-in for it.
proc load_jsonl {db table path} {
  $db eval "CREATE TABLE ${table}(n INTEGER PRIMARY KEY, text TEXT)"
  set insert [string map [list TABLE $table] {
    INSERT INTO TABLE VALUES($n, CAST(replace(CAST(json_extract(
      replace(CAST(@bytes AS TEXT), '\u0000', '\uFDD0\uFDEF\uFDD0'), '$.text')
      AS BLOB), X'EFB790EFB7AFEFB790', X'00') AS TEXT))
  }]
  set f [open $path rb]
  if {[string match *.gz $path]} { zlib push gunzip $f }
  set n 0
  $db transaction {
    while {[gets $f line] >= 0} {
      incr n
      set bytes [binary format a* $line]
      $db eval $insert
    }
  }
  close $f
  return $n
}

# Loads golden ids (one {"ids":[...]} per line, optionally gzipped) into
# TABLE(n, ids).
proc load_golden_ids {db table path} {
  $db eval "CREATE TABLE ${table}(n INTEGER PRIMARY KEY, ids TEXT)"
  set f [open $path rb]
  set data [read $f]
  close $f
  if {[string match *.gz $path]} { set data [zlib gunzip $data] }
  set n 0
  $db transaction {
    foreach line [split [string trimright [encoding convertfrom utf-8 $data] "\n"] "\n"] {
      incr n
      $db eval "INSERT INTO $table VALUES(\$n, json_extract(\$line, '\$.ids'))"
    }
  }
  return $n
}

# Writes a small BytePiece model file: every byte (count 1, but 'a' and 'c'
# 10), then the given extra pieces {bytes count ...} with ids from 259.
proc write_model {path {extra {ab 20 bc 20}}} {
  set entries {}
  for {set b 0} {$b < 256} {incr b} {
    set count [expr {$b == 97 || $b == 99 ? 10 : 1}]
    lappend entries "\"[binary encode base64 [binary format c $b]]\": \[[expr {$b + 3}], \"\", $count\]"
  }
  set id 259
  foreach {piece count} $extra {
    set bytes [encoding convertto utf-8 $piece]
    lappend entries "\"[binary encode base64 $bytes]\": \[$id, \"\", $count\]"
    incr id
  }
  set f [open $path wb]
  puts -nonewline $f "{[join $entries ,\n]}"
  close $f
  return $path
}

proc temp_path {name} {
  return [file join [expr {[info exists ::env(TMPDIR)] ? $::env(TMPDIR) : "/tmp"}] "bp-test-[pid]-$name"]
}
