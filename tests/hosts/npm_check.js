// npm_check.js: the installed npm package, copied by npm_host.sh into the
// fresh project it was installed into and run there: getLoadablePath(),
// load() into better-sqlite3, the version, the golden ids of the built-in
// model bytepiece_80k and FTS5 through it, the error for an object that
// cannot load extensions, the ES module import and the type declarations.
// Prints "npm: N passed, N failed, N skipped".
//   node npm_check.js PUBLISHED_MODEL.zip
const fs = require('node:fs');
const path = require('node:path');
const Database = require('better-sqlite3');
const bytepiece = require('sqlite-bytepiece');

let passed = 0, failed = 0, skipped = 0;
function check(name, got, expected) {
  if (JSON.stringify(got) === JSON.stringify(expected)) passed++;
  else { failed++; console.log(`FAILED npm ${name}\n  expected: ${JSON.stringify(expected)}\n  got:      ${JSON.stringify(got)}`); }
}

// True when bytepiece_80k is built into the packaged extension; a package
// without it is a failure, not a skip.
function withModel(db) {
  try {
    db.prepare("SELECT bp_encode('', 'bytepiece_80k')").get();
    return true;
  } catch (e) {
    failed++;
    console.log(`FAILED npm built-in model: ${e.message}`);
    return false;
  }
}

const packageDir = path.join(__dirname, 'node_modules', 'sqlite-bytepiece');
const manifest = JSON.parse(fs.readFileSync(path.join(packageDir, 'package.json'), 'utf8'));
check('getLoadablePath', bytepiece.getLoadablePath(), path.join(packageDir, 'lib', 'bytepiece.so'));
const db = new Database(':memory:');
bytepiece.load(db);
check('version', db.prepare('SELECT bp_version()').pluck().get(), manifest.version);
check('licence', manifest.license, 'Apache-2.0');
let message;
try { bytepiece.load({}); } catch (e) { message = `${e.name}: ${e.message}`; }
check('load without loadExtension', message,
      'TypeError: sqlite-bytepiece load(db): db has no loadExtension method; pass a better-sqlite3 Database');
const types = fs.readFileSync(path.join(packageDir, manifest.types), 'utf8');
check('type declarations', ['getLoadablePath(): string', 'load(db: LoadableDatabase): void'].map(s => types.includes(s)), [true, true]);

if (withModel(db)) {
  const text = '今天天气不错 hello world 123';
  const ids = '[37037,40950,36144,29161,30241,10177]';
  check('golden ids', db.prepare("SELECT bp_encode(?, 'bytepiece_80k')").pluck().get(text), ids);
  check('decode', db.prepare("SELECT bp_decode(?, 'bytepiece_80k')").pluck().get(ids), text);
  db.exec(`CREATE VIRTUAL TABLE notes USING fts5(body, tokenize = 'bytepiece bytepiece_80k');
           INSERT INTO notes(body) VALUES ('今天天气不错，我们去公园散步。'), ('The weather is fine today.');`);
  check('fts5', db.prepare("SELECT highlight(notes, 0, '[', ']') FROM notes WHERE notes MATCH '天气'").pluck().all(),
        ['今天[天气]不错，我们去公园散步。']);
  check('fts5 english', db.prepare("SELECT rowid FROM notes WHERE notes MATCH 'weather'").pluck().all(), [2]);
}
db.close();

import('sqlite-bytepiece').then(module => {
  check('ES module exports', [typeof module.load, typeof module.getLoadablePath], ['function', 'function']);
}).catch(e => check('ES module import', e.message, 'no error')).finally(() => {
  console.log(`npm: ${passed} passed, ${failed} failed, ${skipped} skipped`);
  process.exit(failed ? 1 : 0);
});
