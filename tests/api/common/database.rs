//! The database a test app runs on: a SQLite file in its temp dir, or, when
//! `INQUIRYD_TEST_DATABASE_URL` names a PostgreSQL server, a fresh database of its
//! own on that server, dropped with it. `Db` reads and writes either for
//! assertions, in the portable SQL the tests write (`?` placeholders, no
//! date functions, booleans tested as `WHERE flag`).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use sqlx::{Connection, Row};

use super::pg::{runtime, PgDatabase};

pub use super::pg::DATABASE_URL_VAR;

/// Whether test apps run on PostgreSQL: `INQUIRYD_TEST_DATABASE_URL` names a server.
pub fn is_postgres() -> bool {
    std::env::var(DATABASE_URL_VAR).is_ok_and(|url| url.starts_with("postgres"))
}

/// `sqlite` or `postgres`: also the name of the backend's `migrations/` folder.
pub fn backend() -> &'static str {
    if is_postgres() {
        "postgres"
    } else {
        "sqlite"
    }
}

/// For a test (or the part of one) that only means something on SQLite's files:
/// on PostgreSQL, says so on the terminal (past the test harness's capture) and
/// returns `true`, for the test to return.
pub fn skip_unless_sqlite(why: &str) -> bool {
    if !is_postgres() {
        return false;
    }
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    let _ = writeln!(std::io::stderr(), "SKIPPED on PostgreSQL: {test}: {why}");
    true
}

/// Unix time in milliseconds, as the database stores times.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// The database one test app is configured with; a PostgreSQL one is dropped
/// when this is.
pub enum TestDatabase {
    Sqlite(PathBuf),
    Postgres(PgDatabase),
}

impl TestDatabase {
    /// A new, empty database for an app whose files are in `dir`.
    pub fn create(dir: &Path) -> Self {
        if is_postgres() {
            Self::Postgres(PgDatabase::create())
        } else {
            Self::Sqlite(dir.join("inquiries.db"))
        }
    }

    /// What the app's `database.url` says.
    pub fn url(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite://{}", path.display()),
            Self::Postgres(db) => db.url.clone(),
        }
    }

    /// How the app names the database in its banner: the file or the database.
    pub fn name(&self) -> String {
        match self {
            Self::Sqlite(path) => path.file_name().unwrap().to_string_lossy().into_owned(),
            Self::Postgres(db) => db.name.clone(),
        }
    }

    /// The SQLite file, for tests of SQLite's files (skipped on PostgreSQL).
    pub fn sqlite_file(&self) -> PathBuf {
        match self {
            Self::Sqlite(path) => path.clone(),
            Self::Postgres(_) => panic!("a SQLite file was asked for on PostgreSQL: skip_unless_sqlite first"),
        }
    }

    pub fn db(&self) -> Db {
        match self {
            Self::Sqlite(path) => Db::sqlite(path),
            Self::Postgres(db) => Db::postgres(&db.url),
        }
    }
}

/// A connection to the test database for assertions and scenario set-up, with
/// a private runtime. Every value reads as text (`None` for NULL); PostgreSQL's
/// booleans read as SQLite stores them, `1` and `0`.
pub struct Db {
    runtime: tokio::runtime::Runtime,
    pool: Pool,
}

enum Pool {
    /// Read-only; writes open a writable connection of their own.
    Sqlite(SqlitePool, PathBuf),
    Postgres(PgPool, String),
}

impl Db {
    /// Any SQLite file (the app's, or a backup of it).
    pub fn sqlite(path: &Path) -> Self {
        let runtime = runtime();
        let pool = runtime.block_on(async {
            let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path).read_only(true);
            sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap()
        });
        Self { runtime, pool: Pool::Sqlite(pool, path.to_owned()) }
    }

    fn postgres(url: &str) -> Self {
        let runtime = runtime();
        let pool = runtime.block_on(sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(url)).unwrap();
        Self { runtime, pool: Pool::Postgres(pool, url.to_owned()) }
    }

    /// Runs statements (one or several) to set up a scenario.
    pub fn write(&self, sql: &str) {
        self.runtime.block_on(async {
            match &self.pool {
                Pool::Sqlite(_, path) => {
                    let options =
                        sqlx::sqlite::SqliteConnectOptions::new().filename(path).busy_timeout(Duration::from_secs(5));
                    let mut conn = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
                    sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
                }
                Pool::Postgres(pool, _) => {
                    sqlx::raw_sql(sql).execute(pool).await.unwrap();
                }
            }
        });
    }

    /// A blob literal for `write`'s SQL.
    pub fn bytes_literal(&self, bytes: &[u8]) -> String {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        match self.pool {
            Pool::Sqlite(..) => format!("x'{hex}'"),
            Pool::Postgres(..) => format!("'\\x{hex}'::bytea"),
        }
    }

    /// One integer (a count), with `bind` for the `?` if there is one.
    pub fn scalar(&self, sql: &str, bind: &str) -> i64 {
        let binds = sql.contains('?');
        self.runtime.block_on(async {
            match &self.pool {
                Pool::Sqlite(pool, _) => {
                    let q = sqlx::query_scalar::<_, i64>(sql);
                    let q = if binds { q.bind(bind) } else { q };
                    q.fetch_one(pool).await
                }
                Pool::Postgres(pool, _) => {
                    let sql = numbered(sql);
                    let q = sqlx::query_scalar::<_, i64>(&sql);
                    let q = if binds { q.bind(bind) } else { q };
                    q.fetch_one(pool).await
                }
            }
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
        })
    }

    /// The first column of every row, as integers (`seq`s, counts).
    pub fn integers(&self, sql: &str) -> Vec<i64> {
        self.runtime.block_on(async {
            match &self.pool {
                Pool::Sqlite(pool, _) => sqlx::query_scalar::<_, i64>(sql).fetch_all(pool).await,
                Pool::Postgres(pool, _) => sqlx::query_scalar::<_, i64>(sql).fetch_all(pool).await,
            }
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
        })
    }

    /// One row as column name → text (NULL as None), or None when absent.
    pub fn row(&self, sql: &str, bind: &str) -> Option<HashMap<String, Option<String>>> {
        self.runtime.block_on(async {
            match &self.pool {
                Pool::Sqlite(pool, _) => sqlite_row(pool, sql, bind).await,
                Pool::Postgres(pool, _) => postgres_row(pool, sql, bind).await,
            }
        })
    }

    /// Where `needle` is stored, if anywhere: on SQLite a window of the database,
    /// search and WAL files' bytes around it (free pages too); on PostgreSQL, whose files
    /// are the server's, the table and row that hold it (search vectors too).
    pub fn find_stored(&self, needle: &str) -> Option<String> {
        match &self.pool {
            Pool::Sqlite(_, path) => {
                let mut bytes = std::fs::read(path).unwrap();
                for companion in ["db-wal", "db-search", "db-search-wal"] {
                    bytes.extend(std::fs::read(path.with_extension(companion)).unwrap_or_default());
                }
                let at = bytes.windows(needle.len()).position(|w| w == needle.as_bytes())?;
                let window = &bytes[at.saturating_sub(120)..(at + 60).min(bytes.len())];
                Some(format!("byte {at} of {}: {:?}", path.display(), String::from_utf8_lossy(window)))
            }
            Pool::Postgres(pool, _) => self.runtime.block_on(async {
                let tables: Vec<String> = sqlx::query_scalar(TABLES).fetch_all(pool).await.unwrap();
                for table in tables {
                    let sql = format!("SELECT row_to_json(t)::text FROM {table} t WHERE strpos(t::text, $1) > 0");
                    let row: Option<String> = sqlx::query_scalar(&sql).bind(needle).fetch_optional(pool).await.unwrap();
                    if let Some(row) = row {
                        return Some(format!("table {table}: {row}"));
                    }
                }
                None
            }),
        }
    }

    /// Holds the database's write lock for `hold` from another connection (as
    /// another process would); returns once it is held. On PostgreSQL that is
    /// every table locked against writes (reads go on, as on SQLite).
    pub fn hold_write_lock(&self, hold: Duration) -> std::thread::JoinHandle<()> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let target = match &self.pool {
            Pool::Sqlite(_, path) => Err(path.clone()),
            Pool::Postgres(_, url) => Ok(url.clone()),
        };
        let handle = std::thread::spawn(move || {
            runtime().block_on(async {
                match target {
                    Err(path) => {
                        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
                        let mut conn = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
                        sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut conn).await.unwrap();
                        ready_tx.send(()).unwrap();
                        tokio::time::sleep(hold).await;
                        sqlx::raw_sql("ROLLBACK").execute(&mut conn).await.unwrap();
                    }
                    Ok(url) => {
                        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
                        let tables: Vec<String> = sqlx::query_scalar(TABLES).fetch_all(&mut conn).await.unwrap();
                        let lock = format!("BEGIN; LOCK TABLE {} IN EXCLUSIVE MODE", tables.join(", "));
                        sqlx::raw_sql(&lock).execute(&mut conn).await.unwrap();
                        ready_tx.send(()).unwrap();
                        tokio::time::sleep(hold).await;
                        sqlx::raw_sql("ROLLBACK").execute(&mut conn).await.unwrap();
                    }
                }
            });
        });
        ready_rx.recv().unwrap();
        handle
    }
}

/// Every table of the app's PostgreSQL schema.
const TABLES: &str = "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename";

/// `?` placeholders as PostgreSQL numbers them: `$1`, `$2`…
fn numbered(sql: &str) -> String {
    let mut n = 0;
    sql.chars()
        .map(|c| match c {
            '?' => {
                n += 1;
                format!("${n}")
            }
            c => c.to_string(),
        })
        .collect()
}

async fn sqlite_row(pool: &SqlitePool, sql: &str, bind: &str) -> Option<HashMap<String, Option<String>>> {
    use sqlx::{Column, TypeInfo, ValueRef};
    let q = sqlx::query(sql);
    let q = if sql.contains('?') { q.bind(bind) } else { q };
    let row = q.fetch_optional(pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"))?;
    let mut map = HashMap::new();
    for (i, column) in row.columns().iter().enumerate() {
        let raw = row.try_get_raw(i).unwrap();
        let value = if raw.is_null() {
            None
        } else {
            match raw.type_info().name() {
                "INTEGER" => Some(row.get::<i64, _>(i).to_string()),
                "BLOB" => Some(format!("{:?}", row.get::<Vec<u8>, _>(i))),
                _ => Some(row.get::<String, _>(i)),
            }
        };
        map.insert(column.name().to_owned(), value);
    }
    Some(map)
}

/// The row as JSON from PostgreSQL, each value back to SQLite's text form.
async fn postgres_row(pool: &PgPool, sql: &str, bind: &str) -> Option<HashMap<String, Option<String>>> {
    let wrapped = format!("SELECT row_to_json(t)::text FROM ({}) AS t", numbered(sql));
    let q = sqlx::query_scalar::<_, String>(&wrapped);
    let q = if sql.contains('?') { q.bind(bind) } else { q };
    let json = q.fetch_optional(pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"))?;
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&json).unwrap();
    let text = |value: serde_json::Value| match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Bool(b) => Some(if b { "1" } else { "0" }.to_owned()),
        other => Some(other.to_string()),
    };
    Some(object.into_iter().map(|(k, v)| (k, text(v))).collect())
}
