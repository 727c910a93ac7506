// The npm package's extension in better-sqlite3 (npm install better-sqlite3@12 sqlite-bytepiece-*.tgz).
const Database = require('better-sqlite3');
const bytepiece = require('sqlite-bytepiece');

const db = new Database('docs.db');
bytepiece.load(db);
const text = '今天天气不错 hello world 123';
console.log(db.prepare("SELECT bp_encode(?, 'bytepiece_80k')").pluck().get(text));
// Full-text search that finds 天气 inside 今天天气不错.
db.exec("CREATE VIRTUAL TABLE IF NOT EXISTS notes USING fts5(body, tokenize = 'bytepiece bytepiece_80k')");
db.prepare('INSERT INTO notes(body) VALUES (?)').run('今天天气不错，我们去公园散步。');
console.log(db.prepare("SELECT highlight(notes, 0, '[', ']') FROM notes WHERE notes MATCH '天气'").pluck().get());
