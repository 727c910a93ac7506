-- demo.sql: the report printed by `make demo`. sql/demo.sh loads the
-- extension, a table docs(id, source, body) and a model trained on it named
-- 'demo 8k'; the report compares every stored model with the built-in
-- bytepiece_80k (the published model, built into the extension).
.headers on
.mode box
CREATE TEMP VIEW compared AS
  SELECT name, builtin, vocab_size, model FROM bp_model_list
  WHERE NOT builtin OR (name = 'bytepiece_80k' AND NOT shadowed);

.print
.print The corpus
SELECT source, count(*) AS documents, printf('%.2f', sum(length(CAST(body AS BLOB))) / 1e6) AS megabytes
FROM docs GROUP BY source ORDER BY source;

.print
.print The models
SELECT name, builtin, vocab_size, printf('%.2f', length(model) / 1e6) AS value_megabytes FROM compared;

.print
.print The trained model's most frequent pieces of two bytes or more
SELECT id, replace(replace(text, char(10), '\n'), ' ', '␣') AS piece, count
FROM bp_vocab('demo 8k') WHERE length(piece) > 1 ORDER BY count DESC LIMIT 12;

.print
.print Compression: bytes per token on each source (higher is better)
CREATE TEMP TABLE counted AS
  SELECT d.id, d.source, length(CAST(d.body AS BLOB)) AS bytes, m.name AS model,
         bp_count(d.body, m.name) AS tokens
  FROM docs AS d, compared AS m;
WITH compression AS (
  SELECT source, model, sum(tokens) AS tokens, 1.0 * sum(bytes) / sum(tokens) AS bytes_per_token
  FROM counted GROUP BY source, model
)
SELECT source, model, tokens, printf('%.3f', bytes_per_token) AS bytes_per_token,
       substr('████████████████████████████████████████', 1,
              CAST(round(40.0 * bytes_per_token / (SELECT max(bytes_per_token) FROM compression)) AS INT))
         AS bar
FROM compression ORDER BY source, model;

.print
.print Tokens per document, trained model
WITH bins(lo, hi) AS (
  VALUES (0, 100), (100, 300), (300, 1000), (1000, 3000), (3000, 10000), (10000, 1e18)
),
hist AS (
  SELECT lo, hi, (SELECT count(*) FROM counted WHERE model = 'demo 8k' AND tokens >= lo AND tokens < hi) AS n
  FROM bins
)
SELECT CASE WHEN hi > 1e17 THEN printf('%6d +', lo) ELSE printf('%6d - %d', lo, hi - 1) END AS tokens,
       n AS documents,
       substr('██████████████████████████████████████████████████', 1,
              CAST(round(50.0 * n / (SELECT max(n) FROM hist)) AS INT)) AS share
FROM hist;

.print
.print The longest documents, in tokens of the trained model
SELECT c.id, c.source, c.tokens, c.bytes,
       replace(substr(d.body, 1, 36), char(10), ' ') || '…' AS beginning
FROM counted AS c JOIN docs AS d USING (id)
WHERE c.model = 'demo 8k' ORDER BY c.tokens DESC LIMIT 5;

.print
.print One line of code, token by token, with the trained model
SELECT position, id, replace(text, ' ', '␣') AS text, start, "end"
FROM bp_tokens('def tokenize(text): return [piece for piece in text.split()]', 'demo 8k');

.print
.print The same sentences with each model: tokens
SELECT m.name AS model, bp_count(s.sentence, m.name) AS tokens, s.sentence
FROM compared AS m,
     (SELECT 'def tokenize(text): return [piece for piece in text.split()]' AS sentence
      UNION ALL SELECT '今天天气不错，我们去公园散步。'
      UNION ALL SELECT 'Permission is hereby granted, free of charge, to any person') AS s
ORDER BY s.sentence, m.name;
