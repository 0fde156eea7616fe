//! Admin tokens on PostgreSQL: only their hash is stored (see [`crate::store::tokens`]).

use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

use super::Tx;
use crate::store::tokens::{constant_time_eq, hash, NewToken};
use crate::store::{Scope, TokenInfo};
use crate::timestamp::{now_ms, to_rfc3339};

fn info(row: &PgRow) -> Result<TokenInfo, sqlx::Error> {
    let scope: String = row.try_get("scope")?;
    let last_used: Option<i64> = row.try_get("last_used_at")?;
    Ok(TokenInfo {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        scope: scope.parse().map_err(|why: String| sqlx::Error::Decode(format!("stored scope: {why}").into()))?,
        created_at: to_rfc3339(row.try_get("created_at")?),
        last_used_at: last_used.map(to_rfc3339),
        revoked_at: row.try_get::<Option<i64>, _>("revoked_at")?.map(to_rfc3339),
        last_used_ms: last_used,
    })
}

pub async fn create(tx: &mut Tx, name: &str, scope: Scope) -> Result<(String, TokenInfo), sqlx::Error> {
    let NewToken { token, id, hash } = NewToken::generate();
    let row = sqlx::query(
        "INSERT INTO admin_tokens (id, name, scope, token_hash, created_at) VALUES ($1, $2, $3, $4, $5) \
         RETURNING id, name, scope, created_at, last_used_at, revoked_at",
    )
    .bind(&id)
    .bind(name)
    .bind(scope.to_string())
    .bind(&hash[..])
    .bind(now_ms())
    .fetch_one(&mut **tx)
    .await?;
    Ok((token, info(&row)?))
}

pub async fn list(pool: &PgPool) -> Result<Vec<TokenInfo>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, name, scope, created_at, last_used_at, revoked_at FROM admin_tokens ORDER BY created_at",
    )
    .fetch_all(pool)
    .await?;
    rows.iter().map(info).collect()
}

pub async fn find(pool: &PgPool, token: &str) -> Result<Option<TokenInfo>, sqlx::Error> {
    let digest = hash(token);
    let row = sqlx::query(
        "SELECT id, name, scope, created_at, last_used_at, revoked_at, token_hash FROM admin_tokens \
         WHERE token_hash = $1 AND revoked_at IS NULL",
    )
    .bind(&digest[..])
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let stored: Vec<u8> = row.try_get("token_hash")?;
    constant_time_eq(&stored, &digest).then(|| info(&row)).transpose()
}

pub async fn revoke(tx: &mut Tx, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE admin_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now_ms())
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn touch(pool: &PgPool, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE admin_tokens SET last_used_at = $1 WHERE id = $2")
        .bind(now_ms())
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}
