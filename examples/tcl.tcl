# The extension in Tcl's sqlite3 package, from a folder holding bytepiece.so.
package require sqlite3
sqlite3 db docs.db
# Extension loading on for the load only, so SQL cannot load libraries later.
db enable_load_extension 1
db eval {SELECT load_extension('./bytepiece')}
db enable_load_extension 0
puts [db onecolumn {SELECT bp_encode('The weather is fine today.', 'bytepiece_80k')}]
db eval {SELECT id, text FROM bp_tokens('The weather is fine today.', 'bytepiece_80k')} {
  puts "$id {$text}"
}
db close
