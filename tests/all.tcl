# all.tcl: runs every tests/*.test in one interpreter and prints the totals.
#   tclsh tests/all.tcl EXTENSION [PATTERN]   (exit status 1 if any test failed)
set ::extension [file normalize [lindex $argv 0]]
set pattern [expr {[llength $argv] > 1 ? [lindex $argv 1] : "*"}]
source [file join [file dirname [info script]] tester.tcl]
foreach test [lsort [glob -directory $::test_dir $pattern.test]] {
  set before_passed $::passed
  set before_failed $::failed
  if {[catch {source $test} error]} {
    incr ::failed
    puts "FAILED [file tail $test]: the file stopped with an error: $error"
    puts $::errorInfo
  }
  foreach handle [info commands db*] { catch {$handle close} }
  puts [format "%-24s %4d passed, %d failed" [file tail $test] \
          [expr {$::passed - $before_passed}] [expr {$::failed - $before_failed}]]
}
puts "tcl: $::passed passed, $::failed failed, $::skipped skipped"
# Standalone too (tclsh tests/all.tcl ...), a failure is a failing exit status.
exit [expr {$::failed > 0 ? 1 : 0}]
