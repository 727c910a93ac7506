// sqlite-bytepiece: the BytePiece SQLite extension, packaged for Node.
//
//   const Database = require('better-sqlite3');
//   const bytepiece = require('sqlite-bytepiece');
//   const db = new Database('docs.db');
//   bytepiece.load(db);
//
// The package carries the loadable extension in lib/bytepiece.so; load()
// loads it into a database, getLoadablePath() gives its path for other hosts.
// SQLite derives the entry point (sqlite3_bytepiece_init) from the file name.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

function getLoadablePath() {
  const file = path.join(__dirname, 'lib', 'bytepiece.so');
  // Checked here so that a missing file says what is missing rather than
  // surfacing as the dynamic loader's message.
  if (!fs.existsSync(file)) {
    throw new Error(`sqlite-bytepiece: the extension ${file} is missing; this package holds a build for linux-${process.arch}`);
  }
  return file;
}

function load(db) {
  if (!db || typeof db.loadExtension !== 'function') {
    throw new TypeError('sqlite-bytepiece load(db): db has no loadExtension method; pass a better-sqlite3 Database');
  }
  db.loadExtension(getLoadablePath());
}

module.exports = { getLoadablePath, load };
