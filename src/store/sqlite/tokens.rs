//! Admin tokens in SQLite: only their hash is stored (see [`crate::store::tokens`]).

use sqlx::{SqliteConnection, SqlitePool};

use crate::store::model::{StoredToken, StoredTokenAndHash};
use crate::store::tokens::{constant_time_eq, hash, NewToken};
use crate::store::{Scope, TokenInfo};
use crate::timestamp::now_ms;

fn info(row: StoredToken) -> Result<TokenInfo, sqlx::Error> {
    TokenInfo::from_stored(row).map_err(|why| sqlx::Error::Decode(why.into()))
}

/// Creates a token and returns it with its record; the token is never stored.
pub async fn create(conn: &mut SqliteConnection, name: &str, scope: Scope) -> Result<(String, TokenInfo), sqlx::Error> {
    let NewToken { token, id, hash } = NewToken::generate();
    let row: StoredToken = sqlx::query_as(
        "INSERT INTO admin_tokens (id, name, scope, token_hash, created_at) VALUES (?, ?, ?, ?, ?) \
         RETURNING id, name, scope, created_at, last_used_at, revoked_at",
    )
    .bind(&id)
    .bind(name)
    .bind(scope.to_string())
    .bind(&hash[..])
    .bind(now_ms())
    .fetch_one(conn)
    .await?;
    Ok((token, info(row)?))
}

pub async fn list(reads: &SqlitePool) -> Result<Vec<TokenInfo>, sqlx::Error> {
    let rows: Vec<StoredToken> = sqlx::query_as(
        "SELECT id, name, scope, created_at, last_used_at, revoked_at FROM admin_tokens ORDER BY created_at",
    )
    .fetch_all(reads)
    .await?;
    rows.into_iter().map(info).collect()
}

/// The active token with this hash. The lookup is by an index on the hash; the
/// final equality check runs in constant time.
pub async fn find(reads: &SqlitePool, token: &str) -> Result<Option<TokenInfo>, sqlx::Error> {
    let digest = hash(token);
    let row: Option<StoredTokenAndHash> = sqlx::query_as(
        "SELECT id, name, scope, created_at, last_used_at, revoked_at, token_hash FROM admin_tokens \
         WHERE token_hash = ? AND revoked_at IS NULL",
    )
    .bind(&digest[..])
    .fetch_optional(reads)
    .await?;
    let Some((id, name, scope, created_at, last_used_at, revoked_at, stored)) = row else { return Ok(None) };
    let row = (id, name, scope, created_at, last_used_at, revoked_at);
    constant_time_eq(&stored, &digest).then(|| info(row)).transpose()
}

/// Revokes by id; `false` when there is no such active token.
pub async fn revoke(conn: &mut SqliteConnection, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE admin_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
        .bind(now_ms())
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn touch(conn: &mut SqliteConnection, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE admin_tokens SET last_used_at = ? WHERE id = ?").bind(now_ms()).bind(id).execute(conn).await?;
    Ok(())
}
