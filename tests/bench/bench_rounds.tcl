# bench_rounds.tcl: training in rounds on a JSONL corpus split into shards:
# per round, the size of each shard's partial and of the state, the time of
# the partials (one after another, each on its own) and of the merge; and
# bp_train on the whole corpus for comparison, with whether the models are
# the same bytes. Times are wall clock and, in brackets, the CPU time of
# the process (from /proc/self/stat: on a shared machine the honest figure).
#   tclsh tests/bench/bench_rounds.tcl EXTENSION CORPUS.jsonl SHARDS OPTIONS
set ::extension [file normalize [lindex $argv 0]]
source [file join [file dirname [info script]] .. tester.tcl]
lassign [lrange $argv 1 end] corpus shards options
bp_open db
set rows [load_jsonl db docs $corpus]
proc now {} { clock microseconds }
# CPU seconds (user and system) of this process so far.
proc cpu {} {
  set f [open /proc/self/stat]; set fields [split [lindex [split [read $f] ")"] end]]; close $f
  expr {([lindex $fields 12] + [lindex $fields 13]) / 100.0}
}
proc secs {t0 t1} { format %.2f [expr {($t1 - $t0) / 1e6}] }
set t0 [now]
set c0 [cpu]
set reference [db onecolumn {SELECT bp_train(text, $options) FROM docs}]
puts "bp_train: [secs $t0 [now]] s \[[format %.2f [expr {[cpu] - $c0}]] s\], model [string length $reference] bytes; $rows rows, $shards shards, options $options"
set state [db onecolumn {SELECT bp_train_start($options)}]
set round 0
while {![db onecolumn {SELECT bp_train_done(@state)}]} {
  incr round
  db eval {DROP TABLE IF EXISTS temp.parts; CREATE TEMP TABLE parts(p BLOB)}
  set sizes {}
  set slowest 0
  set t0 [now]
  set c0 [cpu]
  for {set s 0} {$s < $shards} {incr s} {
    set ts [now]
    set p [db onecolumn {SELECT bp_train_partial(text, @state) FROM docs WHERE n % $shards = $s}]
    set slowest [expr {max($slowest, [now] - $ts)}]
    lappend sizes [string length $p]
    db eval {INSERT INTO temp.parts VALUES(@p)}
  }
  set t1 [now]
  set c1 [cpu]
  set state [db onecolumn {SELECT bp_train_merge(@state, p) FROM temp.parts}]
  set t2 [now]
  set c2 [cpu]
  puts [format "round %d: partials %s bytes (%.2f s \[%.2f\] in all, slowest %.2f s); merge %.2f s \[%.2f\]; state %d bytes" \
          $round [join $sizes /] [expr {($t1 - $t0) / 1e6}] [expr {$c1 - $c0}] [expr {$slowest / 1e6}] \
          [expr {($t2 - $t1) / 1e6}] [expr {$c2 - $c1}] [string length $state]]
}
puts "model: [expr {[db onecolumn {SELECT bp_train_model(@state)}] eq $reference ? {identical to bp_train} : {DIFFERENT}}]"
