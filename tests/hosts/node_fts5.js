// node_fts5.js: the extension in Node's better-sqlite3, whose bundled SQLite
// is newer than the system's: the sample text's pinned ids with the committed
// model tests/data/small.zip (the same as in shell_host.sh, python_host.py,
// static_host.c and hosts.test) and back, and the FTS5 tokenizer, once built
// against the system headers (FTS5 tokenizer API version 1) and once against
// the bundled ones (version 2). Prints "node: N passed, N failed, 0 skipped"
// and exits 1 if any check failed.
//   node node_fts5.js EXTENSION [EXTENSION...] MODEL.zip
const Database = require('better-sqlite3');
const extensions = process.argv.slice(2, -1);
const model = process.argv[process.argv.length - 1];
const text = '  for (size_t i = 0; i < n; i++) return BP_OK; /* 天气 */';
const ids = '[792,113,306,108,46,46,720,69,83,98,82,78,553,232,167,172,233,179,151,262,50]';
let passed = 0, failed = 0;
function check(name, got, expected) {
  if (JSON.stringify(got) === JSON.stringify(expected)) passed++;
  else { failed++; console.log(`FAILED ${name}\n  expected: ${JSON.stringify(expected)}\n  got:      ${JSON.stringify(got)}`); }
}
for (const extension of extensions) {
  const db = new Database(':memory:');
  db.loadExtension(extension);
  db.prepare("INSERT INTO bp_models(name, model) VALUES ('small', bp_model_load(?))").run(model);
  check(`${extension} encode`, db.prepare("SELECT bp_encode(?, 'small')").pluck().get(text), ids);
  check(`${extension} decode`, db.prepare("SELECT bp_decode(?, 'small')").pluck().get(ids), text);
  db.exec(`CREATE VIRTUAL TABLE f USING fts5(body, tokenize = 'bytepiece small');
           CREATE VIRTUAL TABLE u USING fts5(body);
           INSERT INTO f VALUES ('今天天气不错'), ('Cafe\u0301 天气预报'), ('hello world');
           INSERT INTO u SELECT body FROM f;`);
  check(`${extension} fts5 highlight`,
        db.prepare("SELECT highlight(f, 0, '[', ']') FROM f WHERE f MATCH '天气' ORDER BY rowid").pluck().all(),
        ['今天[天气]不错', 'Cafe\u0301 [天气]预报']);
  check(`${extension} unicode61 misses`, db.prepare("SELECT count(*) FROM u WHERE u MATCH '天气'").pluck().get(), 0);
  check(`${extension} fts5 phrase`, db.prepare(`SELECT rowid FROM f WHERE f MATCH '"hello world"'`).pluck().all(), [3]);
  db.exec("INSERT INTO f(f) VALUES ('integrity-check')");
  passed++;
  db.close();
}
console.log(`node: ${passed} passed, ${failed} failed, 0 skipped`);
process.exit(failed ? 1 : 0);
