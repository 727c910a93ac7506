#!/usr/bin/env bash
# make_big_corpus.sh: builds a corpus of about 240 MB of distinct text for
# measuring training at scale (memory caps, threads), from text a Debian
# machine already has: mix_dev, then man pages, /usr/share/doc and the Python
# sources, each file once (files with the same content are kept once). Each
# document is one file cut into pieces of about 64 KB at line ends. The
# result is an SQLite database with a table corpus(text), not kept in git.
#   tests/bench/make_big_corpus.sh OUTPUT.db [MEGABYTES]
set -eu
output=$1
megabytes=${2:-240}
here=$(cd "$(dirname "$0")" && pwd)
shared=${SHARED_DATA:-$here/../../../shared}
rm -f "$output"
/usr/bin/python3 - "$output" "$megabytes" "$shared/corpora/mix_dev.jsonl" <<'PY'
import gzip, hashlib, json, os, sqlite3, sys

output, megabytes, mix_dev = sys.argv[1], int(sys.argv[2]), sys.argv[3]
limit = megabytes * 1000 * 1000
db = sqlite3.connect(output)
db.execute("CREATE TABLE corpus(text TEXT)")
seen, total = set(), 0

def add(text):
    global total
    if total >= limit or not text.strip():
        return
    digest = hashlib.sha1(text.encode()).digest()
    if digest in seen:
        return
    seen.add(digest)
    db.execute("INSERT INTO corpus VALUES (?)", (text,))
    total += len(text.encode())

def add_file(text):
    # Pieces of about 64 KB, cut at line ends: rows of a realistic size.
    start = 0
    while start < len(text) and total < limit:
        end = text.find("\n", start + 65536)
        end = len(text) if end < 0 else end + 1
        add(text[start:end])
        start = end

with open(mix_dev, encoding="utf-8") as f:
    for line in f:
        add(json.loads(line)["text"])

def walk(roots, suffixes):
    for root in roots:
        for directory, _, names in sorted(os.walk(root)):
            for name in sorted(names):
                if total >= limit:
                    return
                path = os.path.join(directory, name)
                if not name.endswith(suffixes) or os.path.islink(path):
                    continue
                try:
                    raw = (gzip.open if name.endswith(".gz") else open)(path, "rb").read()
                    text = raw.decode("utf-8")
                except (OSError, UnicodeDecodeError, EOFError):
                    continue
                if "\0" not in text:
                    add_file(text)

walk(["/usr/share/man"], (".gz",))
walk(["/usr/share/doc"], (".gz", ".txt", ".md", ".html", "README", "changelog", "NEWS"))
walk(sorted(p for p in ("/usr/lib/python3", "/usr/lib/python3.11") if os.path.isdir(p)),
     (".py", ".rst", ".txt"))
db.commit()
rows = db.execute("SELECT count(*) FROM corpus").fetchone()[0]
print(f"{output}: {rows} rows, {total / 1e6:.1f} MB of text", file=sys.stderr)
if total < limit * 0.9:
    print(f"only {total / 1e6:.1f} MB of distinct text found", file=sys.stderr)
PY
