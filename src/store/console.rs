//! Console accounts and sessions: what the store keeps of them, and the
//! queries, the same SQL on both backends (`$n` parameters, which SQLite reads too).
//!
//! A password is stored only as its Argon2id PHC string (hashed outside the
//! store, see `crate::console::password`); a session only as the SHA-256 of
//! its id, so a copy of the database opens no session.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// What a console user may do; each role can do everything the one before can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads and searches.
    Viewer,
    /// Also changes status and notes, retries deliveries and exports.
    Triager,
    /// Also erases, manages users and tokens, reads the audit log.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Triager => "triager",
            Self::Admin => "admin",
        }
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Self::Viewer),
            "triager" => Ok(Self::Triager),
            "admin" => Ok(Self::Admin),
            _ => Err(format!("{s:?} is not a role (viewer, triager or admin)")),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A console account as the CLI and the console show it (never its hash).
#[derive(Debug, Clone, Serialize)]
pub struct UserInfo {
    pub id: String,
    pub email: String,
    pub role: Role,
    pub created_at: i64,
    pub disabled: bool,
    pub last_login_at: Option<i64>,
}

/// What a login checks: the account, its password hash and its lockout.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: UserInfo,
    pub password_hash: String,
    pub locked_until: Option<i64>,
}

/// A live session's times and its (enabled) user.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub user: UserInfo,
    pub created_at: i64,
    pub last_seen_at: i64,
}

/// How many consecutive failures lock an account, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Lockout {
    pub after: i64,
    pub for_ms: i64,
}

/// What one failed login did to its account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Counted; the account is still open.
    Counted,
    /// This failure locked the account.
    LockedNow,
}

/// What marking an inquiry "not spam" did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotSpam {
    /// Now `new`, with the emails and webhook events it never had queued.
    Queued { emails: usize, events: usize },
    /// No such inquiry.
    NotFound,
    /// It is not marked spam (its status).
    WasNot(crate::domain::InquiryStatus),
}

/// An inquiry's triage state beyond its status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Triage {
    /// When someone first opened it; `None`: unread.
    pub read_at: Option<i64>,
    /// The user it is assigned to.
    pub assignee: Option<String>,
    /// When a triager marked it replied.
    pub replied_at: Option<i64>,
}

/// A new user's id: 48 random bits in hex, like a token's.
pub fn new_user_id() -> String {
    let mut bytes = [0u8; 6];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) type UserRow = (String, String, String, i64, Option<i64>, Option<i64>);

pub(crate) fn user_from_row(
    (id, email, role, created_at, disabled_at, last_login_at): UserRow,
) -> Result<UserInfo, sqlx::Error> {
    let role = role.parse::<Role>().map_err(|why| sqlx::Error::Decode(why.into()))?;
    Ok(UserInfo { id, email, role, created_at, disabled: disabled_at.is_some(), last_login_at })
}

pub(crate) const USER_COLUMNS: &str = "u.id, u.email, u.role, u.created_at, u.disabled_at, u.last_login_at";

/// The console queries for one backend's connection type, and the backend's
/// store methods over them (through its `read` and `write`), written once.
macro_rules! console_queries {
    ($backend:ty, $conn:ty) => {
        use $crate::store::console::{
            user_from_row, Credentials, Failure, Lockout, Role, SessionRecord, Triage, UserInfo, UserRow, USER_COLUMNS,
        };

        async fn audit(
            conn: &mut $conn,
            actor: &str,
            action: &str,
            target: Option<&str>,
            detail: serde_json::Value,
            now: i64,
        ) -> Result<(), sqlx::Error> {
            sqlx::query("INSERT INTO audit_log (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)")
                .bind(now)
                .bind(actor)
                .bind(action)
                .bind(target)
                .bind(detail.to_string())
                .execute(&mut *conn)
                .await?;
            Ok(())
        }

        /// Audits an event that changes nothing else (a failed login of an unknown address).
        pub async fn record(
            conn: &mut $conn,
            actor: &str,
            action: &str,
            target: Option<&str>,
            detail: serde_json::Value,
            now: i64,
        ) -> Result<(), sqlx::Error> {
            audit(conn, actor, action, target, detail, now).await
        }

        /// `None` when the address is taken.
        #[allow(clippy::too_many_arguments)]
        pub async fn create_user(
            conn: &mut $conn,
            actor: &str,
            id: &str,
            email: &str,
            email_norm: &str,
            role: Role,
            password_hash: &str,
            now: i64,
        ) -> Result<Option<UserInfo>, sqlx::Error> {
            let taken: Option<String> = sqlx::query_scalar("SELECT id FROM console_users WHERE email_norm = $1")
                .bind(email_norm)
                .fetch_optional(&mut *conn)
                .await?;
            if taken.is_some() {
                return Ok(None);
            }
            sqlx::query(
                "INSERT INTO console_users (id, email, email_norm, role, password_hash, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(email)
            .bind(email_norm)
            .bind(role.as_str())
            .bind(password_hash)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            audit(conn, actor, "user.create", Some(id), serde_json::json!({"role": role.as_str()}), now).await?;
            Ok(Some(UserInfo {
                id: id.to_owned(),
                email: email.to_owned(),
                role,
                created_at: now,
                disabled: false,
                last_login_at: None,
            }))
        }

        pub async fn list_users(conn: &mut $conn) -> Result<Vec<UserInfo>, sqlx::Error> {
            let rows: Vec<UserRow> =
                sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM console_users u ORDER BY u.created_at, u.id"))
                    .fetch_all(&mut *conn)
                    .await?;
            rows.into_iter().map(user_from_row).collect()
        }

        /// Disables the account and ends its sessions; `false` when there is
        /// no such enabled user.
        pub async fn disable_user(conn: &mut $conn, actor: &str, id: &str, now: i64) -> Result<bool, sqlx::Error> {
            let done = sqlx::query("UPDATE console_users SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL")
                .bind(now)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            sqlx::query("DELETE FROM console_sessions WHERE user_id = $1").bind(id).execute(&mut *conn).await?;
            audit(conn, actor, "user.disable", Some(id), serde_json::json!({}), now).await?;
            Ok(true)
        }

        /// Replaces the password, lifts a lockout and ends every session.
        pub async fn set_password(
            conn: &mut $conn,
            actor: &str,
            id: &str,
            password_hash: &str,
            now: i64,
        ) -> Result<bool, sqlx::Error> {
            let done = sqlx::query(
                "UPDATE console_users SET password_hash = $1, failed_logins = 0, locked_until = NULL WHERE id = $2",
            )
            .bind(password_hash)
            .bind(id)
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            sqlx::query("DELETE FROM console_sessions WHERE user_id = $1").bind(id).execute(&mut *conn).await?;
            audit(conn, actor, "user.reset_password", Some(id), serde_json::json!({}), now).await?;
            Ok(true)
        }

        pub async fn credentials(conn: &mut $conn, email_norm: &str) -> Result<Option<Credentials>, sqlx::Error> {
            let row: Option<(String, String, String, i64, Option<i64>, Option<i64>, String, Option<i64>)> =
                sqlx::query_as(&format!(
                    "SELECT {USER_COLUMNS}, u.password_hash, u.locked_until FROM console_users u \
                     WHERE u.email_norm = $1"
                ))
                .bind(email_norm)
                .fetch_optional(&mut *conn)
                .await?;
            let Some((id, email, role, created_at, disabled_at, last_login_at, password_hash, locked_until)) = row
            else {
                return Ok(None);
            };
            let user = user_from_row((id, email, role, created_at, disabled_at, last_login_at))?;
            Ok(Some(Credentials { user, password_hash, locked_until }))
        }

        /// Counts a wrong password against an open account (locking it at
        /// `lockout.after`) and audits the failure, and the lockout when this
        /// one caused it.
        pub async fn login_failed(
            conn: &mut $conn,
            user_id: &str,
            lockout: Lockout,
            now: i64,
        ) -> Result<Failure, sqlx::Error> {
            let failures: Option<i64> = sqlx::query_scalar(
                "UPDATE console_users SET failed_logins = failed_logins + 1, \
                 locked_until = CASE WHEN failed_logins + 1 >= $1 THEN $2 ELSE locked_until END \
                 WHERE id = $3 RETURNING failed_logins",
            )
            .bind(lockout.after)
            .bind(now + lockout.for_ms)
            .bind(user_id)
            .fetch_optional(&mut *conn)
            .await?;
            let detail = serde_json::json!({"reason": "wrong_password"});
            audit(conn, "anonymous", "console.login_failed", Some(user_id), detail, now).await?;
            if failures.is_some_and(|n| n >= lockout.after) {
                sqlx::query("UPDATE console_users SET failed_logins = 0 WHERE id = $1")
                    .bind(user_id)
                    .execute(&mut *conn)
                    .await?;
                let detail = serde_json::json!({"failures": lockout.after, "minutes": lockout.for_ms / 60_000});
                audit(conn, "anonymous", "console.lockout", Some(user_id), detail, now).await?;
                return Ok(Failure::LockedNow);
            }
            Ok(Failure::Counted)
        }

        /// Stores a new session (its id's hash) for a user who just proved
        /// their password; clears their failure count; audited.
        pub async fn start_session(
            conn: &mut $conn,
            user_id: &str,
            id_hash: &[u8],
            replaces: Option<&[u8]>,
            now: i64,
        ) -> Result<(), sqlx::Error> {
            if let Some(old) = replaces {
                sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1").bind(old).execute(&mut *conn).await?;
            }
            sqlx::query(
                "INSERT INTO console_sessions (id_hash, user_id, created_at, last_seen_at) VALUES ($1, $2, $3, $3)",
            )
            .bind(id_hash)
            .bind(user_id)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "UPDATE console_users SET failed_logins = 0, locked_until = NULL, last_login_at = $1 WHERE id = $2",
            )
            .bind(now)
            .bind(user_id)
            .execute(&mut *conn)
            .await?;
            let actor = format!("user:{user_id}");
            audit(conn, &actor, "console.login", Some(user_id), serde_json::json!({}), now).await
        }

        /// The session with this id hash, when its user is enabled.
        pub async fn session(conn: &mut $conn, id_hash: &[u8]) -> Result<Option<SessionRecord>, sqlx::Error> {
            let row: Option<(String, String, String, i64, Option<i64>, Option<i64>, i64, i64)> =
                sqlx::query_as(&format!(
                    "SELECT {USER_COLUMNS}, s.created_at, s.last_seen_at FROM console_sessions s \
                     JOIN console_users u ON u.id = s.user_id WHERE s.id_hash = $1 AND u.disabled_at IS NULL"
                ))
                .bind(id_hash)
                .fetch_optional(&mut *conn)
                .await?;
            let Some((id, email, role, created, disabled_at, last_login_at, created_at, last_seen_at)) = row else {
                return Ok(None);
            };
            let user = user_from_row((id, email, role, created, disabled_at, last_login_at))?;
            Ok(Some(SessionRecord { user, created_at, last_seen_at }))
        }

        pub async fn touch_session(conn: &mut $conn, id_hash: &[u8], now: i64) -> Result<(), sqlx::Error> {
            sqlx::query("UPDATE console_sessions SET last_seen_at = $1 WHERE id_hash = $2")
                .bind(now)
                .bind(id_hash)
                .execute(&mut *conn)
                .await?;
            Ok(())
        }

        /// Ends a session; with `actor`, audits the logout.
        pub async fn end_session(
            conn: &mut $conn,
            id_hash: &[u8],
            actor: Option<&str>,
            now: i64,
        ) -> Result<(), sqlx::Error> {
            let user: Option<String> =
                sqlx::query_scalar("DELETE FROM console_sessions WHERE id_hash = $1 RETURNING user_id")
                    .bind(id_hash)
                    .fetch_optional(&mut *conn)
                    .await?;
            if let (Some(user), Some(actor)) = (user, actor) {
                audit(conn, actor, "console.logout", Some(&user), serde_json::json!({}), now).await?;
            }
            Ok(())
        }

        /// The triage state of each of `ids` that has one.
        pub async fn triage_of(
            conn: &mut $conn,
            ids: &[String],
        ) -> Result<std::collections::HashMap<String, Triage>, sqlx::Error> {
            let mut states = std::collections::HashMap::new();
            if ids.is_empty() {
                return Ok(states);
            }
            let marks: Vec<String> = (1..=ids.len()).map(|n| format!("${n}")).collect();
            let sql = format!(
                "SELECT inquiry_id, read_at, assignee, replied_at FROM console_triage WHERE inquiry_id IN ({})",
                marks.join(", ")
            );
            let mut query = sqlx::query_as::<_, (String, Option<i64>, Option<String>, Option<i64>)>(&sql);
            for id in ids {
                query = query.bind(id);
            }
            for (id, read_at, assignee, replied_at) in query.fetch_all(&mut *conn).await? {
                states.insert(id, Triage { read_at, assignee, replied_at });
            }
            Ok(states)
        }

        /// Marks an inquiry read by its first opening (a later one changes nothing).
        pub async fn mark_read(conn: &mut $conn, inquiry_id: &str, now: i64) -> Result<(), sqlx::Error> {
            sqlx::query(
                "INSERT INTO console_triage (inquiry_id, read_at) SELECT i.id, $2 FROM inquiries i WHERE i.id = $1 \
                 ON CONFLICT (inquiry_id) DO UPDATE SET read_at = COALESCE(console_triage.read_at, excluded.read_at)",
            )
            .bind(inquiry_id)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        /// Assigns (or, with `None`, unassigns) and marks replied or not;
        /// audited. `false` when there is no such inquiry or enabled assignee.
        pub async fn set_triage(
            conn: &mut $conn,
            actor: &str,
            inquiry_id: &str,
            assignee: Option<&str>,
            replied: bool,
            now: i64,
        ) -> Result<bool, sqlx::Error> {
            let exists: Option<String> = sqlx::query_scalar("SELECT id FROM inquiries WHERE id = $1")
                .bind(inquiry_id)
                .fetch_optional(&mut *conn)
                .await?;
            if exists.is_none() {
                return Ok(false);
            }
            if let Some(user) = assignee {
                let enabled: Option<String> =
                    sqlx::query_scalar("SELECT id FROM console_users WHERE id = $1 AND disabled_at IS NULL")
                        .bind(user)
                        .fetch_optional(&mut *conn)
                        .await?;
                if enabled.is_none() {
                    return Ok(false);
                }
            }
            let replied_at = replied.then_some(now);
            sqlx::query(
                "INSERT INTO console_triage (inquiry_id, read_at, assignee, replied_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (inquiry_id) DO UPDATE SET assignee = excluded.assignee, \
                 read_at = COALESCE(console_triage.read_at, excluded.read_at), \
                 replied_at = CASE WHEN excluded.replied_at IS NULL THEN NULL \
                              ELSE COALESCE(console_triage.replied_at, excluded.replied_at) END",
            )
            .bind(inquiry_id)
            .bind(now)
            .bind(assignee)
            .bind(replied_at)
            .execute(&mut *conn)
            .await?;
            let detail = serde_json::json!({"assignee": assignee, "replied": replied});
            audit(conn, actor, "inquiry.triage", Some(inquiry_id), detail, now).await?;
            Ok(true)
        }

        /// The kept counts (`inquiry_counts`: see the migrations), summed over shards: totals by
        /// form, status and category, and the rows of each day from `since_day` on.
        pub async fn counts(conn: &mut $conn, since_day: i64) -> Result<$crate::store::Counts, sqlx::Error> {
            use $crate::store::model::{StoredTally, Tally};
            let totals: Vec<StoredTally> = sqlx::query_as(
                "SELECT CAST(NULL AS BIGINT), form, status, category, CAST(SUM(n) AS BIGINT), CAST(SUM(unread) AS BIGINT) \
                 FROM inquiry_counts GROUP BY form, status, category HAVING SUM(n) > 0",
            )
            .fetch_all(&mut *conn)
            .await?;
            let days: Vec<StoredTally> = sqlx::query_as(
                "SELECT day, form, status, category, CAST(SUM(n) AS BIGINT), CAST(SUM(unread) AS BIGINT) \
                 FROM inquiry_counts WHERE day >= $1 GROUP BY day, form, status, category HAVING SUM(n) > 0",
            )
            .bind(since_day)
            .fetch_all(&mut *conn)
            .await?;
            Ok($crate::store::Counts {
                totals: totals.into_iter().map(|row| Tally::from_stored(row).map(|(_, t)| t)).collect::<Result<_, _>>()?,
                days: days
                    .into_iter()
                    .map(|row| Tally::from_stored(row).map(|(day, t)| (day.unwrap_or_default(), t)))
                    .collect::<Result<_, _>>()?,
            })
        }

        /// How many emails and webhook deliveries failed for good (until retried).
        pub async fn failed_deliveries(conn: &mut $conn) -> Result<(i64, i64), sqlx::Error> {
            sqlx::query_as(
                "SELECT (SELECT count(*) FROM notifications WHERE status = 'failed'), \
                 (SELECT count(*) FROM webhook_deliveries WHERE status = 'failed')",
            )
            .fetch_one(&mut *conn)
            .await
        }

        /// One page of the inquiries assigned to `user`, newest first.
        pub async fn assigned_to(
            conn: &mut $conn,
            user: &str,
            page: $crate::domain::Page,
        ) -> Result<(Vec<$crate::store::InquiryRecord>, Option<i64>), sqlx::Error> {
            let sql = format!(
                "SELECT {} FROM console_triage t JOIN inquiries i ON i.id = t.inquiry_id \
                 WHERE t.assignee = $1 AND i.seq < $2 ORDER BY i.seq DESC LIMIT $3",
                $crate::store::model::INQUIRY_COLUMNS
            );
            let mut items: Vec<$crate::store::InquiryRecord> = sqlx::query_as(&sql)
                .bind(user)
                .bind(page.before.unwrap_or(i64::MAX))
                .bind(i64::from(page.limit) + 1)
                .fetch_all(&mut *conn)
                .await?;
            let more = items.len() > page.limit as usize;
            items.truncate(page.limit as usize);
            let next = if more { items.last().map(|i| i.seq) } else { None };
            Ok((items, next))
        }

        /// Marks a spam inquiry "not spam" (status `new`, audited) and queues,
        /// in the same transaction, the emails (`planned`, built from its
        /// form) and webhook events it never had.
        #[allow(clippy::too_many_arguments)]
        pub async fn not_spam(
            conn: &mut $conn,
            actor: &str,
            id: &str,
            planned: &[$crate::store::PlannedNotification],
            message_id_domain: &str,
            plan: &$crate::store::webhooks::WebhookPlan,
            now: i64,
        ) -> Result<$crate::store::console::NotSpam, sqlx::Error> {
            use $crate::store::console::NotSpam;
            let sql = format!("SELECT {} FROM inquiries i WHERE i.id = $1", $crate::store::model::INQUIRY_COLUMNS);
            let found: Option<$crate::store::InquiryRecord> =
                sqlx::query_as(&sql).bind(id).fetch_optional(&mut *conn).await?;
            let Some(mut inquiry) = found else { return Ok(NotSpam::NotFound) };
            if inquiry.status != $crate::domain::InquiryStatus::Spam {
                return Ok(NotSpam::WasNot(inquiry.status));
            }
            sqlx::query("UPDATE inquiries SET status = 'new', updated_at = $1 WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            inquiry.status = $crate::domain::InquiryStatus::New;
            for notification in planned {
                let notification_id = uuid::Uuid::now_v7().to_string();
                sqlx::query(
                    "INSERT INTO notifications (id, inquiry_id, kind, recipients, message_id, next_attempt_at, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $6)",
                )
                .bind(&notification_id)
                .bind(id)
                .bind(notification.kind.as_str())
                .bind(notification.recipients.join(", "))
                .bind(format!("<{notification_id}@{message_id_domain}>"))
                .bind(now)
                .execute(&mut *conn)
                .await?;
            }
            let events = plan.not_spam(&inquiry, now);
            super::webhooks::insert(conn, &events).await?;
            let detail = serde_json::json!({"emails": planned.len(), "webhook_events": events.len()});
            audit(conn, actor, "inquiry.not_spam", Some(id), detail, now).await?;
            Ok(NotSpam::Queued { emails: planned.len(), events: events.len() })
        }

        impl $backend {
            pub async fn triage_of(
                &self,
                ids: Vec<String>,
            ) -> Result<std::collections::HashMap<String, Triage>, $crate::store::StoreError> {
                self.read(move |c| Box::pin(async move { triage_of(c, &ids).await })).await
            }

            pub async fn not_spam(
                &self,
                actor: &str,
                id: &str,
                planned: Vec<$crate::store::PlannedNotification>,
                message_id_domain: &str,
            ) -> Result<$crate::store::console::NotSpam, $crate::store::StoreError> {
                let (actor, id, domain, plan) =
                    (actor.to_owned(), id.to_owned(), message_id_domain.to_owned(), self.webhook_plan());
                let now = $crate::timestamp::now_ms();
                let outcome = self
                    .write(move |c| {
                        Box::pin(async move { not_spam(c, &actor, &id, &planned, &domain, &plan, now).await })
                    })
                    .await?;
                if let $crate::store::console::NotSpam::Queued { events, .. } = outcome {
                    self.wake_webhooks(events);
                }
                Ok(outcome)
            }

            pub async fn mark_read(&self, inquiry_id: &str) -> Result<(), $crate::store::StoreError> {
                let (id, now) = (inquiry_id.to_owned(), $crate::timestamp::now_ms());
                self.write(move |c| Box::pin(async move { mark_read(c, &id, now).await })).await
            }

            pub async fn set_triage(
                &self,
                actor: &str,
                inquiry_id: &str,
                assignee: Option<String>,
                replied: bool,
            ) -> Result<bool, $crate::store::StoreError> {
                let (actor, id, now) = (actor.to_owned(), inquiry_id.to_owned(), $crate::timestamp::now_ms());
                self.write(move |c| {
                    Box::pin(async move { set_triage(c, &actor, &id, assignee.as_deref(), replied, now).await })
                })
                .await
            }

            pub async fn failed_deliveries(&self) -> Result<(i64, i64), $crate::store::StoreError> {
                self.read(|c| Box::pin(failed_deliveries(c))).await
            }

            pub async fn counts(&self, since_day: i64) -> Result<$crate::store::Counts, $crate::store::StoreError> {
                self.read(move |c| Box::pin(counts(c, since_day))).await
            }

            pub async fn assigned_to(
                &self,
                user: &str,
                page: $crate::domain::Page,
            ) -> Result<(Vec<$crate::store::InquiryRecord>, Option<i64>), $crate::store::StoreError> {
                let user = user.to_owned();
                self.read(move |c| Box::pin(async move { assigned_to(c, &user, page).await })).await
            }

            pub async fn create_user(
                &self,
                actor: &str,
                email: &str,
                email_norm: &str,
                role: Role,
                password_hash: &str,
            ) -> Result<Option<UserInfo>, $crate::store::StoreError> {
                let id = $crate::store::console::new_user_id();
                let (actor, email, email_norm, hash) =
                    (actor.to_owned(), email.to_owned(), email_norm.to_owned(), password_hash.to_owned());
                let now = $crate::timestamp::now_ms();
                self.write(move |c| {
                    Box::pin(async move { create_user(c, &actor, &id, &email, &email_norm, role, &hash, now).await })
                })
                .await
            }

            pub async fn list_users(&self) -> Result<Vec<UserInfo>, $crate::store::StoreError> {
                self.read(|c| Box::pin(list_users(c))).await
            }

            pub async fn disable_user(&self, actor: &str, id: &str) -> Result<bool, $crate::store::StoreError> {
                let (actor, id, now) = (actor.to_owned(), id.to_owned(), $crate::timestamp::now_ms());
                self.write(move |c| Box::pin(async move { disable_user(c, &actor, &id, now).await })).await
            }

            pub async fn set_password(
                &self,
                actor: &str,
                id: &str,
                password_hash: &str,
            ) -> Result<bool, $crate::store::StoreError> {
                let (actor, id, hash) = (actor.to_owned(), id.to_owned(), password_hash.to_owned());
                let now = $crate::timestamp::now_ms();
                self.write(move |c| Box::pin(async move { set_password(c, &actor, &id, &hash, now).await })).await
            }

            pub async fn credentials(&self, email_norm: &str) -> Result<Option<Credentials>, $crate::store::StoreError> {
                let email_norm = email_norm.to_owned();
                self.read(move |c| Box::pin(async move { credentials(c, &email_norm).await })).await
            }

            pub async fn login_failed(
                &self,
                user_id: &str,
                lockout: Lockout,
            ) -> Result<Failure, $crate::store::StoreError> {
                let (user_id, now) = (user_id.to_owned(), $crate::timestamp::now_ms());
                self.write(move |c| Box::pin(async move { login_failed(c, &user_id, lockout, now).await })).await
            }

            pub async fn audit_event(
                &self,
                actor: &str,
                action: &'static str,
                target: Option<&str>,
                detail: serde_json::Value,
            ) -> Result<(), $crate::store::StoreError> {
                let (actor, target) = (actor.to_owned(), target.map(str::to_owned));
                let now = $crate::timestamp::now_ms();
                self.write(move |c| {
                    Box::pin(async move { record(c, &actor, action, target.as_deref(), detail, now).await })
                })
                .await
            }

            pub async fn start_session(
                &self,
                user_id: &str,
                id_hash: [u8; 32],
                replaces: Option<[u8; 32]>,
            ) -> Result<(), $crate::store::StoreError> {
                let (user_id, now) = (user_id.to_owned(), $crate::timestamp::now_ms());
                self.write(move |c| {
                    Box::pin(async move { start_session(c, &user_id, &id_hash, replaces.as_ref().map(|h| &h[..]), now).await })
                })
                .await
            }

            pub async fn session(&self, id_hash: [u8; 32]) -> Result<Option<SessionRecord>, $crate::store::StoreError> {
                self.read(move |c| Box::pin(async move { session(c, &id_hash).await })).await
            }

            pub async fn touch_session(&self, id_hash: [u8; 32]) -> Result<(), $crate::store::StoreError> {
                let now = $crate::timestamp::now_ms();
                self.write(move |c| Box::pin(async move { touch_session(c, &id_hash, now).await })).await
            }

            pub async fn end_session(
                &self,
                id_hash: [u8; 32],
                actor: Option<String>,
            ) -> Result<(), $crate::store::StoreError> {
                let now = $crate::timestamp::now_ms();
                self.write(move |c| Box::pin(async move { end_session(c, &id_hash, actor.as_deref(), now).await }))
                    .await
            }
        }
    };
}

pub(crate) use console_queries;
