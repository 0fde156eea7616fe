//! A PostgreSQL database of a test's own: created empty on the server named by
//! `INQUIRYD_TEST_DATABASE_URL` (default: the local server's `postgres`
//! database) and dropped when the handle goes. With the variable set, every
//! test app gets one (`database.rs`); the replica tests make theirs here.

use sqlx::{Connection, Executor, PgConnection, Row};

/// Names the PostgreSQL server (a `postgres://` URL of any database on it)
/// whose databases the tests create; set, it also moves every test app there.
pub const DATABASE_URL_VAR: &str = "INQUIRYD_TEST_DATABASE_URL";

/// The server tests create their databases on.
pub fn server_url() -> String {
    std::env::var(DATABASE_URL_VAR)
        .ok()
        .filter(|url| url.starts_with("postgres"))
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A runtime for the sync tests' database calls.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime")
}

pub struct PgDatabase {
    pub name: String,
    /// The URL the service is given.
    pub url: String,
    server: String,
}

impl PgDatabase {
    pub fn create() -> Self {
        let server = server_url();
        let name = format!("inquiryd_t_{}", uuid::Uuid::new_v4().simple());
        let url = with_database(&server, &name);
        runtime().block_on(async {
            let mut admin = PgConnection::connect(&server).await.expect("connect to the test PostgreSQL server");
            admin.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("create the test database");
        });
        Self { name, url, server }
    }

    /// Runs `sql` (several statements allowed) in this database.
    pub fn execute(&self, sql: &str) {
        runtime().block_on(async {
            let mut conn = PgConnection::connect(&self.url).await.expect("connect to the test database");
            conn.execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        });
    }

    /// The first column of the first row, as a number.
    pub fn scalar(&self, sql: &str) -> i64 {
        runtime().block_on(async {
            let mut conn = PgConnection::connect(&self.url).await.expect("connect to the test database");
            let row = sqlx::query(sql).fetch_one(&mut conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            row.try_get::<i64, _>(0).or_else(|_| row.try_get::<i32, _>(0).map(i64::from)).expect("a number")
        })
    }

    /// Every row's first column, as text.
    pub fn column(&self, sql: &str) -> Vec<String> {
        runtime().block_on(async {
            let mut conn = PgConnection::connect(&self.url).await.expect("connect to the test database");
            sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
        })
    }

    /// Drops the database now (its service loses its connections).
    pub fn drop_now(&self) {
        runtime().block_on(async {
            if let Ok(mut admin) = PgConnection::connect(&self.server).await {
                let _ = admin.execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str()).await;
            }
        });
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        self.drop_now();
    }
}

/// `url` with its path (the database) replaced by `database`, the rest kept.
fn with_database(url: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let query = tail.find('?').map(|i| &tail[i..]).unwrap_or("");
    format!("{scheme}://{authority}/{database}{query}")
}
