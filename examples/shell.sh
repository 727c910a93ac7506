# .load takes the library's path: ./bytepiece, not bytepiece, which the
# system's library path is searched for ("Error: bytepiece.so: cannot open
# shared object file"). The suffix .so may be left out.
sqlite3 docs.db <<'SQL'
.load ./bytepiece
SELECT bp_encode('今天天气不错 hello world 123', 'bytepiece_80k');
SELECT bp_decode('[37037,40950,36144,29161,30241,10177]', 'bytepiece_80k');
SELECT position, id, text FROM bp_tokens('The weather is fine today.', 'bytepiece_80k');
SQL
