// A promise face on one sqlite3 connection, for the catalog only. It adds no queueing of its own:
// the catalog runs one operation at a time, and the connection is put in serialized mode anyway.
import sqlite3 from 'sqlite3';

export type SqlValue = string | number | null;

export interface RunResult {
  /** Rows changed by an INSERT, UPDATE or DELETE. */
  changes: number;
  /** Rowid of the last row an INSERT added. */
  lastId: number;
}

/** A statement prepared once and run many times inside one transaction. */
export class PreparedStatement {
  constructor(private readonly statement: sqlite3.Statement) {}

  run(params: readonly SqlValue[]): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      this.statement.run(params, function (this: sqlite3.RunResult, err: Error | null) {
        if (err) reject(err);
        else resolve({ changes: this.changes, lastId: this.lastID });
      });
    });
  }

  finalize(): Promise<void> {
    return new Promise((resolve) => {
      // finalize reports no error that a caller could act on; the statement is gone either way.
      this.statement.finalize(() => resolve());
    });
  }
}

export class SqliteConnection {
  private constructor(private readonly db: sqlite3.Database) {}

  /** Opens (and creates if missing) a database file. SQLite reads nothing yet: a file that is not a
   *  database fails on the first statement, not here. */
  static open(filePath: string): Promise<SqliteConnection> {
    return new Promise((resolve, reject) => {
      const db = new sqlite3.Database(filePath, sqlite3.OPEN_READWRITE | sqlite3.OPEN_CREATE, (err) => {
        if (err) reject(err);
        else {
          // Without this, node-sqlite3 may start queued statements out of order.
          db.serialize();
          resolve(new SqliteConnection(db));
        }
      });
    });
  }

  run(sql: string, params: readonly SqlValue[] = []): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      this.db.run(sql, params, function (this: sqlite3.RunResult, err: Error | null) {
        if (err) reject(err);
        else resolve({ changes: this.changes, lastId: this.lastID });
      });
    });
  }

  get<Row>(sql: string, params: readonly SqlValue[] = []): Promise<Row | undefined> {
    return new Promise((resolve, reject) => {
      this.db.get<Row>(sql, params, (err: Error | null, row: Row | undefined) => {
        if (err) reject(err);
        else resolve(row);
      });
    });
  }

  all<Row>(sql: string, params: readonly SqlValue[] = []): Promise<Row[]> {
    return new Promise((resolve, reject) => {
      this.db.all<Row>(sql, params, (err: Error | null, rows: Row[]) => {
        if (err) reject(err);
        else resolve(rows);
      });
    });
  }

  /** Runs several statements without parameters (schema scripts). */
  exec(sql: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.db.exec(sql, (err: Error | null) => {
        if (err) reject(err);
        else resolve();
      });
    });
  }

  prepare(sql: string): Promise<PreparedStatement> {
    return new Promise((resolve, reject) => {
      const statement = this.db.prepare(sql, (err: Error | null) => {
        if (err) reject(err);
        else resolve(new PreparedStatement(statement));
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.db.close((err) => {
        if (err) reject(err);
        else resolve();
      });
    });
  }
}
