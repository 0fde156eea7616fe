//! A PostgreSQL database of a test's own: created empty on the server named by
//! `INQUIRYD_TEST_DATABASE_URL` (default: the local server's `postgres`
//! database) and dropped when the handle goes.

use sqlx::{Connection, Executor, PgConnection, Row};

/// The server tests create their databases on.
pub fn server_url() -> String {
    std::env::var("INQUIRYD_TEST_DATABASE_URL")
        .ok()
        .filter(|url| url.starts_with("postgres"))
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn runtime() -> tokio::runtime::Runtime {
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
        let (base, _) = server.rsplit_once('/').expect("a database URL");
        let url = format!("{base}/{name}");
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
