-- analytics.sql: queries to paste and adapt. They expect a table
-- docs(id, lang, body) and two models in bp_models: 'default' (used when no
-- model is named) and 'other', to compare. The test suite runs this file.

-- Corpus size in tokens, per language.
SELECT lang, count(*) AS documents, sum(bp_count(body)) AS tokens,
       round(1.0 * sum(length(CAST(body AS BLOB))) / sum(bp_count(body)), 3) AS bytes_per_token
FROM docs GROUP BY lang ORDER BY lang;

-- The same as one JSON object per language: size and percentiles of tokens per document.
SELECT lang, bp_stats(body) AS stats FROM docs GROUP BY lang ORDER BY lang;

-- A histogram of tokens per document, in powers of two, with a bar to read
-- at a glance (in the sqlite3 shell, .mode box or column).
SELECT (1 << CAST(log2(max(bp_count(body), 1)) AS INT)) AS at_least_tokens,
       count(*) AS documents,
       substr('████████████████████████████████████████', 1,
              CAST(round(40.0 * count(*) / max(count(*)) OVER ()) AS INT)) AS bar
FROM docs WHERE body IS NOT NULL GROUP BY 1 ORDER BY 1;

-- Two models side by side on the same text: which compresses better? The
-- longer bar is the better model.
SELECT model, vocab_size, tokens, bytes_per_token,
       substr('████████████████████████████████████████', 1,
              CAST(round(40.0 * bytes_per_token / max(bytes_per_token) OVER ()) AS INT)) AS bar
FROM (SELECT m.name AS model, m.vocab_size, sum(bp_count(d.body, m.name)) AS tokens,
             round(1.0 * sum(length(CAST(d.body AS BLOB))) / sum(bp_count(d.body, m.name)), 3)
               AS bytes_per_token
      FROM docs AS d, bp_models AS m WHERE m.name IN ('default', 'other')
      GROUP BY m.name)
ORDER BY bytes_per_token DESC;

-- The longest documents in tokens.
SELECT id, lang, bp_count(body) AS tokens FROM docs ORDER BY tokens DESC, id LIMIT 3;

-- Documents that do not fit a 64-token context, and what fits of them.
SELECT id, bp_count(body) AS tokens, bp_count(bp_truncate(body, 64)) AS kept_tokens
FROM docs WHERE bp_count(body) > 64 ORDER BY id;

-- Chunks of at most 32 tokens with 8 tokens of overlap, for retrieval.
SELECT d.id, c.chunk, c.tokens, c.start, c."end"
FROM docs AS d, bp_chunks(d.body, 32, 'default', 8) AS c
WHERE d.id = (SELECT min(id) FROM docs) ORDER BY c.chunk;
