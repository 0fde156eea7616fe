//! Console accounts and sessions in SQLite: the shared queries (see
//! [`crate::store::console`]); writes go through the writer.

crate::store::console::console_queries!(super::Sqlite, sqlx::SqliteConnection);
