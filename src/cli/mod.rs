//! The command line: parse, load configuration, dispatch.

mod admin;
mod users;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::Settings;
use crate::mail::{Composer, Transport};
use crate::startup::Application;
use crate::{store, telemetry};

#[derive(Debug, Parser)]
#[command(name = "inquiryd", version, about = "The backend of a website's Contact Us form")]
pub struct Cli {
    /// Configuration file layered over the built-in defaults.
    #[arg(long, global = true, env = "INQUIRYD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service and the email delivery worker (applies migrations first).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage admin tokens.
    Token {
        #[command(subcommand)]
        action: admin::TokenAction,
    },
    /// Manage console users.
    User {
        #[command(subcommand)]
        action: users::UserAction,
    },
    /// The inquiry log in the terminal.
    Inquiries {
        #[command(subcommand)]
        action: admin::InquiriesAction,
    },
    /// Apply the retention policy now.
    Purge {
        /// Count what would be erased; erase nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write a consistent copy of the live database to FILE (safe while serving).
    Backup { file: PathBuf },
    /// Email delivery.
    Mail {
        #[command(subcommand)]
        action: MailAction,
    },
    /// Probe this host's `GET /healthz` (for a container HEALTHCHECK); exit 0 when healthy.
    Healthcheck,
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum MailAction {
    /// Send one test email through the configured transport and print the server's answer.
    Test {
        #[arg(long, value_name = "ADDR")]
        to: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Print the effective configuration (secrets redacted); fail when it is invalid.
    Check,
}

/// Runs one command to completion.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => serve(settings).await,
        Command::Migrate => {
            store::migrate(&settings.database).await?;
            eprintln!("migrations applied to {}", settings.database.url);
            Ok(())
        }
        Command::Healthcheck => healthcheck(&settings),
        Command::Backup { file } => {
            let count = store::backup(&settings.database, &file).await?;
            println!("backed up {count} inquiries to {}", file.display());
            Ok(())
        }
        Command::Token { action } => admin::token(&settings, action).await,
        Command::User { action } => users::user(&settings, action).await,
        Command::Inquiries { action } => admin::inquiries(&settings, action).await,
        Command::Purge { dry_run } => admin::purge(&settings, dry_run).await,
        Command::Mail { action: MailAction::Test { to } } => mail_test(&settings, &to).await,
        Command::Config { action: ConfigAction::Check } => {
            print!("{}", settings.redacted_toml());
            Ok(())
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    telemetry::init(&settings.log);
    let banner = banner(&settings);
    let app = Application::build(settings).await.context("cannot start")?;
    println!("inquiryd listening on http://{}", app.address());
    println!("{banner}");
    tracing::info!(address = %app.address(), "listening");
    app.run_until_stopped().await
}

/// The start-up summary: what an operator checks first.
fn banner(s: &Settings) -> String {
    let word = |on: bool| if on { "on" } else { "off" };
    let name = |v: &dyn spelled::Named| v.name();
    let mail = match s.mail.transport {
        crate::config::MailTransportKind::Smtp => format!(
            "smtp {}:{} ({}{})",
            s.smtp.host,
            s.smtp.port,
            name(&s.smtp.tls),
            if s.smtp.username.is_empty() { String::new() } else { format!(", AUTH as {}", s.smtp.username) }
        ),
        crate::config::MailTransportKind::File => format!("file transport into {}", s.mail.file_dir.display()),
        crate::config::MailTransportKind::Log => "log transport (nothing is sent)".to_owned(),
    };
    let counted = match s.limits.backend {
        crate::config::LimitBackend::Memory => ", counted in this process".to_owned(),
        crate::config::LimitBackend::Redis => format!(", shared in Redis (keys {}*)", s.limits.redis_key_prefix),
    };
    let retention = match s.privacy.retention_days {
        0 => "kept forever".to_owned(),
        days => format!("erased after {days} days"),
    };
    let database = if crate::store::is_postgres(&s.database.url) {
        format!("{} (pool of {})", crate::store::describe(&s.database), s.database.pool_size)
    } else {
        format!(
            "{} (synchronous {}, group commit {}, search index {})",
            crate::store::describe(&s.database),
            name(&s.database.synchronous),
            word(s.database.group_commit),
            word(s.database.search_index)
        )
    };
    format!(
        "  database   {database}\n\
         \x20 mail       {mail}; staff mail to {}; receipts {}\n\
         \x20 limits     {}{counted}: {}/min per address (burst {}), {}/hour per email, {} failed admin logins/min\n\
         \x20 privacy    client address {}, consent {}, inquiries {retention}",
        s.mail.to.join(", "),
        word(s.mail.acknowledge_submitter),
        word(s.limits.enabled),
        s.limits.per_ip_per_minute,
        s.limits.per_ip_burst,
        s.limits.per_email_per_hour,
        s.limits.admin_failures_per_minute,
        name(&s.privacy.store_ip),
        if s.privacy.require_consent { "required" } else { "optional" },
    )
}

/// Configuration enums as spelled in the configuration file.
mod spelled {
    pub trait Named {
        fn name(&self) -> String;
    }

    impl<T: serde::Serialize> Named for T {
        fn name(&self) -> String {
            serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
        }
    }
}

async fn mail_test(settings: &Settings, to: &str) -> anyhow::Result<()> {
    let to = to.parse().map_err(|_| anyhow::anyhow!("--to {to:?} is not an email address"))?;
    let composer = Composer::new(&settings.mail, settings.forms()?).context("cannot load the email templates")?;
    let transport = Transport::from_settings(&settings.mail, &settings.smtp).context("invalid mail settings")?;
    let message = composer.test_message(to)?;
    let name = format!("test-{}", uuid::Uuid::now_v7());
    match transport.send(&message, &name).await {
        Ok(answer) => {
            println!("sent via {:?}: {answer}", settings.mail.transport);
            Ok(())
        }
        Err(e) if e.permanent => anyhow::bail!("refused (permanent): {}", e.detail),
        Err(e) => anyhow::bail!("not sent (transient): {}", e.detail),
    }
}

fn healthcheck(settings: &Settings) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let host = match settings.server.host.as_str() {
        "0.0.0.0" => "127.0.0.1",
        "::" | "[::]" => "::1",
        other => other,
    };
    let address = (host, settings.server.port);
    let timeout = std::time::Duration::from_secs(3);
    let target = std::net::ToSocketAddrs::to_socket_addrs(&address)?.next().context("no address to probe")?;
    let mut stream = std::net::TcpStream::connect_timeout(&target, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    anyhow::ensure!(head.ends_with(b" 200"), "unhealthy: {}", String::from_utf8_lossy(&head));
    Ok(())
}
