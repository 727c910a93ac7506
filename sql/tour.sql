.load ./bytepiece
-- A table of text to work on.
CREATE TABLE docs(id INTEGER PRIMARY KEY, lang TEXT, body TEXT);
INSERT INTO docs(lang, body) VALUES
  ('zh', '今天天气不错，我们去公园散步。'), ('en', 'The weather is fine today.'),
  ('en', 'def tokenize(text): return text.split()');

-- Store a model under a name. bp_models persists in the database file. Here a copy
-- of a built-in model; a model file is bp_model_load('bytepiece_80k.zip').
INSERT INTO bp_models(name, model)
  SELECT 'zh80k', model FROM bp_model_list WHERE name = 'bytepiece_80k';
SELECT name, vocab_size FROM bp_models;                   -- zh80k | 79896

SELECT bp_encode('今天天气不错 hello world 123', 'zh80k');
-- [37037,40950,36144,29161,30241,10177]
SELECT bp_decode('[37037,40950,36144,29161,30241,10177]', 'zh80k');
-- 今天天气不错 hello world 123

-- The published models are built in, usable by name with nothing stored.
SELECT name, builtin, vocab_size FROM bp_model_list;
SELECT bp_encode('Das Wetter ist heute schön.', 'bytepiece.eu.plus.80k');

-- Count tokens for a budget; with one model stored (or one named 'default')
-- the model argument can be left out (with nothing stored: bytepiece_80k).
SELECT sum(bp_count(body)) FROM docs;
SELECT lang, avg(bp_count(body)), max(bp_count(body)) FROM docs GROUP BY lang;

-- Look inside.
SELECT * FROM bp_tokens('今天天气不错', 'zh80k');
SELECT id, text, count, score FROM bp_vocab('zh80k') ORDER BY count DESC LIMIT 20;

-- Subword regularization: a random segmentation, p(segmentation) ∝ Π p(piece)^alpha.
SELECT bp_encode(body, 'zh80k', 0.1) FROM docs;       -- a fresh draw each call
SELECT bp_encode(body, 'zh80k', 0.1, 42) FROM docs;   -- seeded: reproducible

-- Pre-tokenize a corpus for training: ids with <bos>/<eos>, as int32 little-endian.
CREATE TABLE ids AS
  SELECT id, bp_encode_packed(body, 'zh80k', '{"bos": true, "eos": true}') AS ids FROM docs;

-- Train a tokenizer on your own text (the reference's algorithm, same result).
-- On three rows no piece occurs min_count times: the model is the 256 bytes only
-- (vocab_size 259); train on thousands of documents.
INSERT INTO bp_models(name, model)
  SELECT 'docs', bp_train(body, json_object('vocab_size', 8000, 'min_count', 8)) FROM docs;
INSERT INTO bp_models(name, model) SELECT 'docs4k', bp_model_shrink('docs', 4000);

-- Budgets: fit a context window, cut for retrieval, measure a corpus.
SELECT bp_truncate(body, 512, 'zh80k') FROM docs;
SELECT * FROM docs, bp_chunks(docs.body, 256, 'zh80k', 32);
SELECT lang, bp_stats(body, 'zh80k') FROM docs GROUP BY lang;

-- Full-text search that finds 天气 inside 今天天气不错.
CREATE VIRTUAL TABLE docs_fts USING fts5(body, tokenize = 'bytepiece zh80k');

-- Write the model back in the official BytePiece JSON format, or for SentencePiece.
SELECT bp_model_save('zh80k', '/tmp/zh80k.model');
SELECT bp_model_save('docs', '/tmp/docs.sp.model', 'sentencepiece');
DELETE FROM bp_models WHERE name = 'zh80k';
