//! Admin tokens on PostgreSQL: only their hash is stored (see [`crate::store::tokens`]).

use sqlx::PgPool;

use super::Tx;
use crate::store::model::{StoredToken, StoredTokenAndHash};
use crate::store::tokens::{constant_time_eq, hash, NewToken};
use crate::store::{Scope, TokenInfo};
use crate::timestamp::now_ms;

fn info(row: StoredToken) -> Result<TokenInfo, sqlx::Error> {
    TokenInfo::from_stored(row).map_err(|why| sqlx::Error::Decode(why.into()))
}

pub async fn create(tx: &mut Tx, name: &str, scope: Scope) -> Result<(String, TokenInfo), sqlx::Error> {
    let NewToken { token, id, hash } = NewToken::generate();
    let row: StoredToken = sqlx::query_as(
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
    Ok((token, info(row)?))
}

pub async fn list(pool: &PgPool) -> Result<Vec<TokenInfo>, sqlx::Error> {
    let rows: Vec<StoredToken> = sqlx::query_as(
        "SELECT id, name, scope, created_at, last_used_at, revoked_at FROM admin_tokens ORDER BY created_at",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(info).collect()
}

pub async fn find(pool: &PgPool, token: &str) -> Result<Option<TokenInfo>, sqlx::Error> {
    let digest = hash(token);
    let row: Option<StoredTokenAndHash> = sqlx::query_as(
        "SELECT id, name, scope, created_at, last_used_at, revoked_at, token_hash FROM admin_tokens \
         WHERE token_hash = $1 AND revoked_at IS NULL",
    )
    .bind(&digest[..])
    .fetch_optional(pool)
    .await?;
    let Some((id, name, scope, created_at, last_used_at, revoked_at, stored)) = row else { return Ok(None) };
    let row = (id, name, scope, created_at, last_used_at, revoked_at);
    constant_time_eq(&stored, &digest).then(|| info(row)).transpose()
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
