//! Admin tokens in SQLite: only their hash is stored (see [`crate::store::tokens`]).

use sqlx::{Row, SqliteConnection, SqlitePool};

use crate::store::tokens::{constant_time_eq, hash, NewToken};
use crate::store::{Scope, TokenInfo};
use crate::timestamp::{now_ms, to_rfc3339};

fn info(row: &sqlx::sqlite::SqliteRow) -> Result<TokenInfo, sqlx::Error> {
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

/// Creates a token and returns it with its record; the token is never stored.
pub async fn create(conn: &mut SqliteConnection, name: &str, scope: Scope) -> Result<(String, TokenInfo), sqlx::Error> {
    let NewToken { token, id, hash } = NewToken::generate();
    let row = sqlx::query(
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
    Ok((token, info(&row)?))
}

pub async fn list(reads: &SqlitePool) -> Result<Vec<TokenInfo>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, name, scope, created_at, last_used_at, revoked_at FROM admin_tokens ORDER BY created_at",
    )
    .fetch_all(reads)
    .await?;
    rows.iter().map(info).collect()
}

/// The active token with this hash. The lookup is by an index on the hash; the
/// final equality check runs in constant time.
pub async fn find(reads: &SqlitePool, token: &str) -> Result<Option<TokenInfo>, sqlx::Error> {
    let digest = hash(token);
    let row = sqlx::query(
        "SELECT id, name, scope, created_at, last_used_at, revoked_at, token_hash FROM admin_tokens \
         WHERE token_hash = ? AND revoked_at IS NULL",
    )
    .bind(&digest[..])
    .fetch_optional(reads)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let stored: Vec<u8> = row.try_get("token_hash")?;
    constant_time_eq(&stored, &digest).then(|| info(&row)).transpose()
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
