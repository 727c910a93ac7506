#!/usr/bin/env python3
"""bench_search.py: full-text search with FTS5 on a corpus, tokenizer by tokenizer.

    bench_search.py EXTENSION MODEL CORPUS [--base EXTENSION] [--per-set N] [--seed S]
                    [--write-queries FILE]

Query sets are drawn from the corpus with a fixed seed: 1, 2 and 3-4
characters of Chinese, Japanese or Korean text; mixed queries (3 to 12
characters holding both CJK characters and an ASCII word, never cutting an
ASCII word); ASCII words in random letter case. A query's ground truth is the
set of documents whose text contains it, ASCII letter case ignored, where an
ASCII word at either end of the query is a whole word in the document (a
user typing "linux" is not asking for "linuxes"). Each query runs as an FTS5
phrase, t MATCH '"query"'. Recall and precision are totals over the queries
of a set; the index is every shadow table but _content (dbstat); indexing
MB/s is the corpus's UTF-8 bytes over the time of one INSERT ... SELECT;
latency is the mean time of a query returning every rowid.

--base runs the tokenizer of another build (the unmodified extension) as
"bytepiece (base)" and "bytepiece subwords 1 (base)". --write-queries writes
the queries as JSON lines {"set", "query"} (how tests/data was made).
"""
import json
import os
import random
import re
import sqlite3
import sys
import tempfile
import time

CJK = re.compile('[\u1100-\u11ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]')
ASCII_WORD = re.compile('[A-Za-z0-9_]')


def sample_queries(texts, per_set, seed):
    rng = random.Random(seed)
    sets = {'1 char': [], '2 chars': [], '3-4 chars': [], 'mixed': [], 'ascii words': []}
    seen = set()
    attempts = 0
    while any(len(q) < per_set for q in sets.values()) and attempts < 10_000_000:
        attempts += 1
        text = texts[rng.randrange(len(texts))]
        if not text:
            continue
        start = rng.randrange(len(text))
        kind = rng.choice(list(sets))
        if len(sets[kind]) >= per_set:
            continue
        if kind == 'ascii words':
            match = re.compile(r'[A-Za-z][A-Za-z0-9_]{2,}').search(text, start)
            if not match or (match.start() > 0 and ASCII_WORD.match(text[match.start() - 1])):
                continue
            word = match.group()
            query = ''.join(c.upper() if rng.random() < 0.5 else c.lower() for c in word)
        elif kind == 'mixed':
            length = rng.randint(3, 12)
            query = text[start:start + length]
            if (len(query) < length or not CJK.search(query) or not re.search('[A-Za-z]', query)
                    or '\n' in query):
                continue
            # Never cut an ASCII word, nor start or end on a space or punctuation.
            if ASCII_WORD.match(query[0]) and start > 0 and ASCII_WORD.match(text[start - 1]):
                continue
            end = start + length
            if ASCII_WORD.match(query[-1]) and end < len(text) and ASCII_WORD.match(text[end]):
                continue
            if not (CJK.match(query[0]) or ASCII_WORD.match(query[0])):
                continue
            if not (CJK.match(query[-1]) or ASCII_WORD.match(query[-1])):
                continue
        else:
            length = {'1 char': 1, '2 chars': 2, '3-4 chars': rng.randint(3, 4)}[kind]
            query = text[start:start + length]
            if len(query) < length or not all(CJK.match(c) for c in query):
                continue
        if query in seen:
            continue
        seen.add(query)
        sets[kind].append(query)
    return sets


def truth(texts, query):
    pattern = re.escape(query)
    if ASCII_WORD.match(query[0]):
        pattern = '(?<![A-Za-z0-9_])' + pattern
    if ASCII_WORD.match(query[-1]):
        pattern = pattern + '(?![A-Za-z0-9_])'
    regex = re.compile(pattern, re.IGNORECASE)
    return {i + 1 for i, text in enumerate(texts) if regex.search(text)}


def index_bytes(db, table):
    rows = db.execute("SELECT name, sum(pgsize) FROM dbstat WHERE name LIKE ? || '\\_%' ESCAPE '\\' "
                      "GROUP BY name", (table,)).fetchall()
    return sum(size for name, size in rows if name != table + '_content')


def run(label, extension, model, tokenize, texts, sets, truths, work):
    path = os.path.join(work, re.sub('[^a-z0-9]+', '_', label.lower()) + '.db')
    db = sqlite3.connect(path)
    db.enable_load_extension(True)
    db.load_extension(extension)
    db.execute("CREATE TABLE corpus(n INTEGER PRIMARY KEY, text TEXT)")
    db.executemany("INSERT INTO corpus VALUES (?, ?)", enumerate(texts, 1))
    db.execute("INSERT INTO bp_models(name, model) VALUES ('zh80k', bp_model_load(?))", (model,))
    db.commit()
    declaration = "fts5(body%s)" % (", tokenize = '%s'" % tokenize if tokenize else '')
    db.execute("CREATE VIRTUAL TABLE t USING " + declaration)
    started = time.perf_counter()
    db.execute("INSERT INTO t(rowid, body) SELECT n, text FROM corpus")
    db.commit()
    seconds = time.perf_counter() - started
    megabytes = sum(len(t.encode()) for t in texts) / 1e6
    size = index_bytes(db, 't')
    results = {}
    query_seconds, query_count = 0.0, 0
    for kind, queries in sets.items():
        found = relevant = returned = 0
        for query in queries:
            phrase = '"' + query.replace('"', '""') + '"'
            started = time.perf_counter()
            rows = {r[0] for r in db.execute("SELECT rowid FROM t WHERE t MATCH ?", (phrase,))}
            query_seconds += time.perf_counter() - started
            query_count += 1
            expected = truths[query]
            found += len(rows & expected)
            relevant += len(expected)
            returned += len(rows)
        results[kind] = (found / relevant if relevant else 1.0,
                         found / returned if returned else 1.0)
    db.close()
    os.unlink(path)
    return {'label': label, 'results': results, 'size': size, 'mbps': megabytes / seconds,
            'latency_ms': 1000 * query_seconds / max(query_count, 1)}


def main(argv):
    args = argv[1:]
    options = {'--base': None, '--per-set': '100', '--seed': '20261201', '--write-queries': None}
    positional = []
    while args:
        a = args.pop(0)
        if a in options:
            options[a] = args.pop(0)
        else:
            positional.append(a)
    extension, model, corpus = positional
    with open(corpus, encoding='utf-8') as f:
        texts = [json.loads(line)['text'] for line in f if line.strip()]
    sets = sample_queries(texts, int(options['--per-set']), int(options['--seed']))
    if options['--write-queries']:
        with open(options['--write-queries'], 'w', encoding='utf-8') as f:
            for kind, queries in sets.items():
                for q in queries:
                    f.write(json.dumps({'set': kind, 'query': q}, ensure_ascii=False) + '\n')
    truths = {q: truth(texts, q) for queries in sets.values() for q in queries}
    configs = [('unicode61', extension, ''), ('trigram', extension, 'trigram'),
               ('bytepiece (default, pieces 1)', extension, 'bytepiece zh80k'),
               ('bytepiece pieces 0', extension, 'bytepiece zh80k pieces 0')]
    if options['--base']:
        configs += [('bytepiece (base)', options['--base'], 'bytepiece zh80k'),
                    ('bytepiece subwords 1 (base)', options['--base'], 'bytepiece zh80k subwords 1')]
    print("Search on %s: %d documents, %.1f MB; %s queries per set, seed %s"
          % (os.path.basename(corpus), len(texts), sum(len(t.encode()) for t in texts) / 1e6,
             options['--per-set'], options['--seed']))
    print("  recall/precision per query set; index = shadow tables but _content, against trigram")
    with tempfile.TemporaryDirectory() as work:
        rows = [run(label, ext, model, tok, texts, sets, truths, work) for label, ext, tok in configs]
    trigram = next(r['size'] for r in rows if r['label'] == 'trigram')
    header = "  %-30s" % "tokenizer" + "".join("%-17s" % k for k in sets) + \
        "%9s %7s %9s %9s" % ("index", "vs tri", "index", "query")
    print(header)
    print("  %-30s" % "" + "".join("%-17s" % "recall  prec" for _ in sets) +
          "%9s %7s %9s %9s" % ("KB", "", "MB/s", "ms"))
    for r in rows:
        cells = "".join("%6.1f%% %6.1f%%   " % (100 * rec, 100 * prec)
                        for rec, prec in (r['results'][k] for k in sets))
        print("  %-30s%s%9d %6.0f%% %9.2f %9.3f" % (r['label'], cells, r['size'] // 1024,
                                                  100 * r['size'] / trigram, r['mbps'],
                                                  r['latency_ms']))


if __name__ == '__main__':
    main(sys.argv)
