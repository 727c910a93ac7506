// Type declarations for sqlite-bytepiece.

/** The absolute path of the packaged extension, lib/bytepiece.so. */
export declare function getLoadablePath(): string;

/** Any database that can load a SQLite extension by path, as better-sqlite3's Database. */
export interface LoadableDatabase {
  loadExtension(path: string): unknown;
}

/** Loads the extension into db; throws a TypeError if db cannot load extensions. */
export declare function load(db: LoadableDatabase): void;
