//! Webhook deliveries on SQLite: the shared queries, run on the writer's
//! connection (writes) or the read pool.

crate::store::webhooks::webhook_queries!(sqlx::Sqlite, sqlx::SqliteConnection);

/// At start-up: whatever a previous process was delivering when it died is
/// due again (no other process sends from this file).
pub async fn reset_in_flight(conn: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE webhook_deliveries SET status = 'pending', lease_until = NULL WHERE status = 'sending'")
        .execute(&mut *conn)
        .await?;
    Ok(())
}
