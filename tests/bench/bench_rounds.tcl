# bench_rounds.tcl: training in rounds on each corpus split into shards (by
# rowid modulo SHARDS), one thread: per round, the CPU seconds of counting
# (every shard's bp_train_partial, one after another) and of adding up (the
# shards' partials combined into one, then merged into the next state), the
# largest partial of a shard, the combined partial and the state, as a
# table; then whether the model is bp_train's over all the rows, byte for
# byte (with bp_train's own CPU time). CPU seconds are the process's (from
# /proc/self/stat): on a shared machine the honest figure; wall seconds of
# the whole run are given too.
#   tclsh tests/bench/bench_rounds.tcl EXTENSION SHARDS OPTIONS CORPUS...
# A CORPUS is a JSONL file ({"text": ...} per line) or an SQLite file with a
# table corpus(text), such as tests/bench/make_big_corpus.sh builds.
set ::extension [file normalize [lindex $argv 0]]
source [file join [file dirname [info script]] .. tester.tcl]
lassign [lrange $argv 1 2] shards options
set corpora [lrange $argv 3 end]
bp_open db
# CPU seconds (user and system) of this process so far.
proc cpu {} {
  set f [open /proc/self/stat]; set fields [split [lindex [split [read $f] ")"] end]]; close $f
  expr {([lindex $fields 12] + [lindex $fields 13]) / 100.0}
}
proc kb {bytes} { format %.1f [expr {$bytes / 1e3}] }

foreach corpus $corpora {
  db eval {DROP TABLE IF EXISTS docs}
  if {[string match *.jsonl* $corpus]} {
    load_jsonl db docs $corpus
  } else {
    db eval {ATTACH $corpus AS source;
             CREATE TABLE docs(n INTEGER PRIMARY KEY, text TEXT);
             INSERT INTO docs(text) SELECT text FROM source.corpus;
             DETACH source}
  }
  lassign [db eval {SELECT count(*), sum(length(CAST(text AS BLOB))) FROM docs}] rows bytes
  puts [format "%s: %.1f MB, %d rows, %d shards, options %s" [file tail $corpus] \
          [expr {$bytes / 1e6}] $rows $shards $options]
  puts [format "  %-5s %9s %9s %13s %12s %11s" round "count s" "merge s" "partial kB" \
          "combined kB" "state kB"]
  set started [clock milliseconds]
  set state [db onecolumn {SELECT bp_train_start($options)}]
  set round 0
  set count_total 0
  set merge_total 0
  while {![db onecolumn {SELECT bp_train_done(@state)}]} {
    incr round
    db eval {DROP TABLE IF EXISTS temp.parts; CREATE TEMP TABLE parts(p BLOB)}
    set largest 0
    set c0 [cpu]
    for {set s 0} {$s < $shards} {incr s} {
      set p [db onecolumn {SELECT bp_train_partial(text, @state) FROM docs WHERE n % $shards = $s}]
      set largest [expr {max($largest, [string length $p])}]
      db eval {INSERT INTO temp.parts VALUES(@p)}
    }
    set c1 [cpu]
    set combined [db onecolumn {SELECT bp_train_combine(p) FROM temp.parts}]
    set state [db onecolumn {SELECT bp_train_merge(@state, @combined)}]
    set c2 [cpu]
    set count_total [expr {$count_total + $c1 - $c0}]
    set merge_total [expr {$merge_total + $c2 - $c1}]
    puts [format "  %-5d %9.2f %9.2f %13s %12s %11s" $round [expr {$c1 - $c0}] \
            [expr {$c2 - $c1}] [kb $largest] [kb [string length $combined]] \
            [kb [string length $state]]]
  }
  set wall [expr {([clock milliseconds] - $started) / 1e3}]
  puts [format "  %-5s %9.2f %9.2f   (%.1f s wall)" all $count_total $merge_total $wall]
  set c0 [cpu]
  set reference [db onecolumn {SELECT bp_train(text, $options) FROM docs}]
  set c1 [cpu]
  puts [format "  bp_train: %.2f s; the model of the rounds is %s" [expr {$c1 - $c0}] \
          [expr {[db onecolumn {SELECT bp_train_model(@state)}] eq $reference ? {identical} : {DIFFERENT}}]]
}
