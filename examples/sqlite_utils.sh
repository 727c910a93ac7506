# The wheel's extension in sqlite-utils; python is the one the wheel is installed in.
sqlite-utils query docs.db \
  --load-extension "$(python -c 'import sqlite_bytepiece; print(sqlite_bytepiece.loadable_path())')" \
  "SELECT bp_encode('今天天气不错 hello world 123', 'bytepiece_80k') AS ids"
