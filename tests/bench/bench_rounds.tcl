# bench_rounds.tcl: training in rounds on a JSONL corpus split into shards:
# per round, the size of each shard's partial and of the state, the time of
# the partials (one after another, each on its own) and of the merge; and
# bp_train on the whole corpus for comparison, with whether the models are
# the same bytes.
#   tclsh tests/bench/bench_rounds.tcl EXTENSION CORPUS.jsonl SHARDS OPTIONS
set ::extension [file normalize [lindex $argv 0]]
source [file join [file dirname [info script]] .. tester.tcl]
lassign [lrange $argv 1 end] corpus shards options
bp_open db
set rows [load_jsonl db docs $corpus]
proc now {} { clock microseconds }
proc secs {t0 t1} { format %.2f [expr {($t1 - $t0) / 1e6}] }
set t0 [now]
set reference [db onecolumn {SELECT bp_train(text, $options) FROM docs}]
puts "bp_train: [secs $t0 [now]] s, model [string length $reference] bytes; $rows rows, $shards shards, options $options"
set state [db onecolumn {SELECT bp_train_start($options)}]
set round 0
while {![db onecolumn {SELECT bp_train_done(@state)}]} {
  incr round
  db eval {DROP TABLE IF EXISTS temp.parts; CREATE TEMP TABLE parts(p BLOB)}
  set sizes {}
  set slowest 0
  set t0 [now]
  for {set s 0} {$s < $shards} {incr s} {
    set ts [now]
    set p [db onecolumn {SELECT bp_train_partial(text, @state) FROM docs WHERE n % $shards = $s}]
    set slowest [expr {max($slowest, [now] - $ts)}]
    lappend sizes [string length $p]
    db eval {INSERT INTO temp.parts VALUES(@p)}
  }
  set t1 [now]
  set state [db onecolumn {SELECT bp_train_merge(@state, p) FROM temp.parts}]
  set t2 [now]
  puts [format "round %d: partials %s bytes (%.2f s in all, slowest %.2f s); merge %.2f s; state %d bytes" \
          $round [join $sizes /] [expr {($t1 - $t0) / 1e6}] [expr {$slowest / 1e6}] \
          [expr {($t2 - $t1) / 1e6}] [string length $state]]
}
puts "model: [expr {[db onecolumn {SELECT bp_train_model(@state)}] eq $reference ? {identical to bp_train} : {DIFFERENT}}]"
