-- demo.sql: the report printed by `make demo` (sql/demo.sh loads the
-- extension, a table docs(id, body) and a model named zh80k first).
.timer off
.headers on
.mode box

SELECT name, vocab_size FROM bp_models;

.print
.print Corpus size in tokens
CREATE TEMP TABLE counted AS
  SELECT id, length(CAST(body AS BLOB)) AS bytes, bp_count(body, 'zh80k') AS tokens FROM docs;
SELECT count(*) AS documents,
       printf('%.2f', sum(bytes) / 1e6) AS megabytes,
       sum(tokens) AS tokens,
       printf('%.3f', 1.0 * sum(bytes) / sum(tokens)) AS bytes_per_token
FROM counted;

.print
.print Tokens per document
WITH bins(lo, hi) AS (
  VALUES (0, 100), (100, 300), (300, 1000), (1000, 3000), (3000, 10000), (10000, 1e18)
),
hist AS (
  SELECT lo, hi, (SELECT count(*) FROM counted WHERE tokens >= lo AND tokens < hi) AS n FROM bins
)
SELECT CASE WHEN hi > 1e17 THEN printf('%6d +', lo) ELSE printf('%6d - %d', lo, hi - 1) END AS tokens,
       n AS documents,
       substr('██████████████████████████████████████████████████', 1,
              CAST(round(50.0 * n / (SELECT max(n) FROM hist)) AS INT)) AS share
FROM hist;

.print
.print The longest documents
SELECT id, tokens, bytes, replace(substr(body, 1, 40), char(10), ' ') || '…' AS beginning
FROM counted JOIN docs USING (id) ORDER BY tokens DESC LIMIT 5;

.print
.print Most frequent multi-byte tokens in the first 200 documents
SELECT replace(replace(t.text, char(10), '\n'), ' ', '␣') AS token, count(*) AS uses
FROM (SELECT body FROM docs ORDER BY id LIMIT 200) AS d, bp_tokens(d.body, 'zh80k') AS t
WHERE length(t.piece) > 1 AND trim(t.text) <> ''
GROUP BY t.id ORDER BY uses DESC LIMIT 10;

.print
.print One sentence, token by token
SELECT position, id, text, start, "end" FROM bp_tokens('今天天气不错 hello world 123', 'zh80k');
