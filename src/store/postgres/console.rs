//! Console accounts and sessions on PostgreSQL: the shared queries (see
//! [`crate::store::console`]).

crate::store::console::console_queries!(super::Postgres, sqlx::PgConnection);
