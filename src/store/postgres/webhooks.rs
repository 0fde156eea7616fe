//! Webhook deliveries on PostgreSQL: the shared queries. Claims take a
//! transaction-scoped advisory lock first, so that two replicas never claim
//! two events of one inquiry at once (which would let them arrive out of order).

crate::store::webhooks::webhook_queries!(sqlx::Postgres, sqlx::PgConnection);
