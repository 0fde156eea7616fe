//! Admin commands: tokens, the inquiry log, retention. They share the store
//! functions, the filter parser and the serializers with the HTTP API.

use std::io::Write;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::domain::{encode_cursor, parse_query, ExportFormat, Purpose};
use crate::mail;
use crate::retention;
use crate::startup::open_store;
use crate::store::{Scope, Store};

#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Create a token and print it alone on stdout (it is shown only once).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "read", value_parser = ["read", "write"])]
        scope: String,
    },
    /// List tokens (never the tokens themselves).
    List,
    /// Revoke a token by its id.
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum InquiriesAction {
    /// One page of inquiries, newest first.
    List {
        #[command(flatten)]
        filters: Filters,
        #[arg(long)]
        limit: Option<String>,
        #[arg(long)]
        cursor: Option<String>,
        /// Print the page as the API returns it.
        #[arg(long)]
        json: bool,
    },
    /// Every matching inquiry as CSV or NDJSON.
    Export {
        #[command(flatten)]
        filters: Filters,
        #[arg(long, value_parser = ["csv", "ndjson"])]
        format: String,
        /// Write to FILE instead of stdout.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<std::path::PathBuf>,
        /// CSV without the UTF-8 byte-order mark it starts with by default.
        #[arg(long)]
        no_bom: bool,
    },
}

/// The same filters as the API's query parameters.
#[derive(Debug, Args)]
pub struct Filters {
    #[arg(long)]
    status: Option<String>,
    #[arg(long)]
    category: Option<String>,
    #[arg(long)]
    email: Option<String>,
    /// A form's id: its inquiries only (and, in a CSV export, a column per custom field).
    #[arg(long)]
    form: Option<String>,
    /// Full-text search.
    #[arg(short = 'q', long = "q")]
    q: Option<String>,
    /// RFC 3339, inclusive.
    #[arg(long)]
    since: Option<String>,
    /// RFC 3339, inclusive.
    #[arg(long)]
    until: Option<String>,
}

impl Filters {
    fn pairs(&self) -> Vec<(String, String)> {
        [
            ("status", &self.status),
            ("category", &self.category),
            ("email", &self.email),
            ("form", &self.form),
            ("q", &self.q),
            ("since", &self.since),
            ("until", &self.until),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_owned(), v.clone())))
        .collect()
    }
}

/// The database, migrated. Its writer stops once the returned handle (and
/// every clone) is dropped, which the commands do before they return.
pub(super) async fn open(settings: &Settings) -> anyhow::Result<Store> {
    let plan = std::sync::Arc::new(crate::store::webhooks::WebhookPlan::new(settings));
    let (store, _writer) = open_store(settings, Default::default(), plan).await?;
    Ok(store)
}

fn invalid(errors: Vec<crate::domain::FieldError>) -> anyhow::Error {
    let reasons: Vec<String> = errors.iter().map(|e| format!("--{}: {}", e.field, e.message)).collect();
    anyhow::anyhow!("{}", reasons.join("; "))
}

pub async fn token(settings: &Settings, action: TokenAction) -> anyhow::Result<()> {
    let store = open(settings).await?;
    match action {
        TokenAction::Create { name, scope } => {
            let scope: Scope = scope.parse().map_err(anyhow::Error::msg)?;
            let name = name.trim().to_owned();
            anyhow::ensure!(!name.is_empty() && name.chars().count() <= 100, "--name must be 1 to 100 characters");
            let (token, info) = store.create_token("cli", &name, scope).await?;
            println!("{token}");
            eprintln!("created token {} ({}, {}); it is shown only this once", info.id, info.name, info.scope);
        }
        TokenAction::List => {
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{:<12}  {:<5}  {:<24}  {:<24}  {:<24}  NAME",
                "ID", "SCOPE", "CREATED", "LAST USED", "REVOKED"
            )?;
            for t in store.list_tokens().await? {
                let dash = || "-".to_owned();
                writeln!(
                    out,
                    "{:<12}  {:<5}  {:<24}  {:<24}  {:<24}  {}",
                    t.id,
                    t.scope,
                    t.created_at,
                    t.last_used_at.unwrap_or_else(dash),
                    t.revoked_at.unwrap_or_else(dash),
                    t.name
                )?;
            }
        }
        TokenAction::Revoke { id } => {
            let revoked = store.revoke_token("cli", &id).await?;
            anyhow::ensure!(revoked, "no active token with that id");
            eprintln!("revoked");
        }
    }
    Ok(())
}

pub async fn inquiries(settings: &Settings, action: InquiriesAction) -> anyhow::Result<()> {
    let store = open(settings).await?;
    match action {
        InquiriesAction::List { filters, limit, cursor, json } => {
            let mut pairs = filters.pairs();
            pairs.extend(limit.map(|l| ("limit".to_owned(), l)));
            pairs.extend(cursor.map(|c| ("cursor".to_owned(), c)));
            let query = parse_query(&pairs, Purpose::List).map_err(invalid)?;
            let (items, next) = store.list(&query.filter, query.page).await?;
            let mut out = std::io::stdout().lock();
            if json {
                let page = json!({"items": items, "next_cursor": next.map(encode_cursor)});
                writeln!(out, "{}", serde_json::to_string_pretty(&page)?)?;
                return Ok(());
            }
            writeln!(
                out,
                "{:<36}  {:<24}  {:<11}  {:<12}  {:<24}  SUBJECT",
                "ID", "RECEIVED", "STATUS", "CATEGORY", "NAME"
            )?;
            for i in &items {
                writeln!(
                    out,
                    "{:<36}  {:<24}  {:<11}  {:<12}  {:<24}  {}",
                    i.id,
                    crate::timestamp::to_rfc3339(i.received_at),
                    i.status,
                    i.category,
                    clip(&i.name, 24),
                    clip(&i.subject, 60)
                )?;
            }
            if let Some(next) = next {
                writeln!(out, "more: --cursor {}", encode_cursor(next))?;
            }
        }
        InquiriesAction::Export { filters, format, output, no_bom } => {
            let mut pairs = filters.pairs();
            pairs.push(("format".to_owned(), format));
            pairs.push(("bom".to_owned(), (!no_bom).to_string()));
            let query = parse_query(&pairs, Purpose::Export).map_err(invalid)?;
            let format = query.format.unwrap_or(ExportFormat::Ndjson);
            let (tx, mut rx) = mpsc::channel(4);
            let filter = query.filter.clone();
            let custom = settings.forms()?.export_columns(filter.form.as_deref());
            let exporting =
                tokio::spawn(async move { store.export(&filter, format, query.bom, custom.as_deref(), tx).await });
            let mut sink: Box<dyn Write + Send> = match &output {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout())),
            };
            while let Some(chunk) = rx.recv().await {
                sink.write_all(&chunk)?;
            }
            sink.flush()?;
            let count = exporting.await??;
            if output.is_some() {
                eprintln!("exported {count} inquiries");
            }
        }
    }
    Ok(())
}

fn clip(text: &str, width: usize) -> String {
    let one_line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if one_line.chars().count() <= width {
        one_line
    } else {
        one_line.chars().take(width - 1).chain(['…']).collect()
    }
}

pub async fn purge(settings: &Settings, dry_run: bool) -> anyhow::Result<()> {
    let days = settings.privacy.retention_days;
    anyhow::ensure!(days > 0, "privacy.retention_days is 0: inquiries are kept forever, nothing to purge");
    let store = open(settings).await?;
    if dry_run {
        let count = store.count_before(retention::cutoff(days)).await?;
        println!("{count} inquiries are older than {days} days and would be erased");
        return Ok(());
    }
    let mut erased = Vec::new();
    let purged = retention::purge(&store, days, "cli", &mut erased, &CancellationToken::new(), None).await;
    mail::forget(&settings.mail, &erased).await;
    purged.map_err(|e| anyhow::anyhow!(e).context(format!("erased {} inquiries, then failed", erased.len())))?;
    println!("erased {} inquiries older than {days} days", erased.len());
    Ok(())
}
