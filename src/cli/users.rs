//! `inquiryd user …`: console accounts. A password comes from standard input
//! (its first line) or, when standard input is a terminal or empty, is
//! generated and printed once, alone on stdout.

use std::io::{IsTerminal, Read, Write};

use clap::Subcommand;

use super::admin::open;
use crate::config::Settings;
use crate::console::password;
use crate::domain::EmailAddress;
use crate::store::console::Role;
use crate::timestamp::to_rfc3339;

#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Create a console user; the password is read from stdin or generated and printed once.
    Create {
        #[arg(long, value_name = "ADDR")]
        email: String,
        /// viewer, triager or admin.
        #[arg(long)]
        role: String,
    },
    /// List console users (never their passwords).
    List,
    /// Disable a user and end their sessions.
    Disable { id: String },
    /// Set a new password (from stdin, or generated and printed once) and end the user's sessions.
    ResetPassword { id: String },
}

/// The new password's PHC string, and the password itself when it was generated.
fn new_password() -> anyhow::Result<(String, Option<String>)> {
    let mut given = String::new();
    if !std::io::stdin().is_terminal() {
        std::io::stdin().read_to_string(&mut given)?;
    }
    let given = given.lines().next().unwrap_or("").to_owned();
    let (password, generated) = if given.is_empty() {
        let password = password::generate();
        (password.clone(), Some(password))
    } else {
        password::check_strength(&given).map_err(anyhow::Error::msg)?;
        (given, None)
    };
    Ok((password::hash(&password)?, generated))
}

pub async fn user(settings: &Settings, action: UserAction) -> anyhow::Result<()> {
    let store = open(settings).await?;
    match action {
        UserAction::Create { email, role } => {
            let role: Role = role.parse().map_err(|why| anyhow::anyhow!("--role: {why}"))?;
            let address =
                EmailAddress::parse("email", email.trim()).map_err(|e| anyhow::anyhow!("--email: {}", e.message))?;
            let (hash, generated) = new_password()?;
            let user = store
                .create_user("cli", address.as_str(), address.normalized(), role, &hash)
                .await?
                .ok_or_else(|| anyhow::anyhow!("a user with that email already exists"))?;
            if let Some(password) = generated {
                println!("{password}");
            }
            eprintln!("created user {} ({}, {})", user.id, user.email, user.role);
        }
        UserAction::List => {
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{:<12}  {:<7}  {:<8}  {:<24}  {:<24}  EMAIL",
                "ID", "ROLE", "STATE", "CREATED", "LAST LOGIN"
            )?;
            for u in store.list_users().await? {
                writeln!(
                    out,
                    "{:<12}  {:<7}  {:<8}  {:<24}  {:<24}  {}",
                    u.id,
                    u.role,
                    if u.disabled { "disabled" } else { "active" },
                    to_rfc3339(u.created_at),
                    u.last_login_at.map_or_else(|| "-".to_owned(), to_rfc3339),
                    u.email
                )?;
            }
        }
        UserAction::Disable { id } => {
            anyhow::ensure!(store.disable_user("cli", &id).await?, "no enabled user with that id");
            eprintln!("disabled; their sessions have ended");
        }
        UserAction::ResetPassword { id } => {
            let (hash, generated) = new_password()?;
            anyhow::ensure!(store.set_password("cli", &id, &hash).await?, "no user with that id");
            if let Some(password) = generated {
                println!("{password}");
            }
            eprintln!("password replaced; their sessions have ended");
        }
    }
    Ok(())
}
