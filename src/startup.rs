//! Wiring: open storage, start the writer, bind the listener, serve.
//!
//! [`Application`] owns every task it starts and stops them all through one
//! cancellation token, in this order (see [`Application::run_until_stopped`]):
//! stop accepting connections, finish the requests in flight, stop the tasks that
//! produce work (retention, limiter housekeeping), let the outbox worker finish
//! its sends and hand back its other claims, let the writer commit its queue,
//! exit 0.

use std::collections::HashSet;
use std::future::Future;
use std::net::TcpListener;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use actix_http::error::DispatchError;
use actix_http::{HttpService, Protocol, Request};
use actix_service::{fn_service, map_config, ServiceFactoryExt};
use actix_web::dev::{AppConfig, Server};
use actix_web::http::header;
use actix_web::middleware::from_fn;
use actix_web::rt::net::TcpStream;
use actix_web::{web, App};
use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::connection::Connection;
use crate::domain::Forms;
use crate::limits::Guard;
use crate::mail::{Composer, MailChannel, Transport};
use crate::outbox::{OutboxWorker, WorkerOptions};
use crate::problem::Problem;
use crate::store::webhooks::WebhookPlan;
use crate::store::{Store, StoreOptions};
use crate::webhooks::WebhookChannel;
use crate::{mail, retention, routes, telemetry};

/// Everything a request handler may touch, built once at start-up.
pub struct AppState {
    pub settings: Arc<Settings>,
    /// Every form, resolved from the configuration once.
    pub forms: Forms,
    pub store: Store,
    pub metrics: PrometheusHandle,
    pub guard: Arc<Guard>,
    /// Wakes the outbox worker (after an admin re-queues a notification).
    pub outbox: Arc<Notify>,
    /// The `RateLimit-Policy` header value, fixed by the configuration.
    pub rate_limit_policy: String,
    /// Idempotency keys whose first request is still being processed.
    pub in_flight: Mutex<HashSet<String>>,
    /// The web console's templates, cookie and origins.
    pub console: routes::console::Console,
}

pub struct Application {
    address: std::net::SocketAddr,
    server: Server,
    /// SIGTERM or SIGINT, listened for from `build` on.
    signals: Pin<Box<dyn Future<Output = ()> + Send>>,
    tasks: BackgroundTasks,
    shutdown_timeout: Duration,
}

/// Every task the service runs beside the HTTP server, and the one token that
/// stops them.
struct BackgroundTasks {
    stop: CancellationToken,
    /// Tasks that only create work (retention, limiter housekeeping): stopped first.
    producers: Vec<(&'static str, JoinHandle<()>)>,
    /// Email's and (when configured) webhooks': each finishes the deliveries in
    /// progress and hands back the rest of its claims.
    outbox_workers: Vec<JoinHandle<()>>,
    /// Ends once every writer handle is dropped, after committing its queue.
    writer: JoinHandle<()>,
}

impl BackgroundTasks {
    /// Cancels every task, then waits for each in turn; a task still running at
    /// `deadline` is aborted (dropping its writer handle) so that the writer can
    /// drain and the process can exit.
    async fn stop(self, deadline: Instant) -> anyhow::Result<()> {
        self.stop.cancel();
        for (name, task) in self.producers {
            stop_by(name, task, deadline).await;
        }
        for worker in self.outbox_workers {
            stop_by("outbox worker", worker, deadline).await;
        }
        self.writer.await.context("the writer task failed")?;
        tracing::info!("all tasks stopped");
        Ok(())
    }
}

async fn stop_by(name: &str, mut task: JoinHandle<()>, deadline: Instant) {
    if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
        tracing::warn!(task = name, "did not stop in time; aborted (claims it held are retried at the next start)");
        task.abort();
        let _ = task.await;
    }
}

impl Application {
    /// Opens and migrates the database, starts the writer and binds the listener
    /// (port 0 picks a free port, see [`Application::address`]).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        // Installed first: what start-up records (the limiter's connection) counts too.
        let metrics = metrics_handle();
        let settings = Arc::new(settings);
        let outbox = Arc::new(Notify::new());
        let webhooks = Arc::new(WebhookPlan::new(&settings));
        let (store, writer_task) = open_store(&settings, outbox.clone(), webhooks.clone()).await?;
        store.ensure_search_index(settings.database.search_index).await.context("cannot prepare the search index")?;
        // What an upload interrupted by a crash left. With SQLite this process
        // is the directory's only user; replicas may be mid-upload.
        let at_start = if crate::store::is_postgres(&settings.database.url) {
            retention::upload_window(&settings)
        } else {
            Duration::ZERO
        };
        match store.sweep_files(at_start).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "removed files left by interrupted uploads"),
            Err(error) => tracing::warn!(%error, "cannot sweep the files directory"),
        }

        let forms = settings.forms()?;
        let mut composer = Composer::new(&settings.mail, forms.clone())
            .context("cannot load the email templates")?
            .with_attachments(&settings.storage.files_dir, settings.mail.attach_max_bytes);
        if settings.admin.console && !settings.server.public_url.is_empty() {
            composer = composer.with_console(&settings.server.public_url);
        }
        let transport = Transport::from_settings(&settings.mail, &settings.smtp).context("invalid mail settings")?;
        let stop = CancellationToken::new();
        let options = WorkerOptions {
            concurrency: settings.mail.concurrency,
            max_attempts: settings.mail.max_attempts,
            retry_base_seconds: settings.mail.retry_base_seconds,
            lease_ms: settings.mail.lease_seconds as i64 * 1000,
        };
        let mail = MailChannel { composer: Arc::new(composer), transport: Arc::new(transport) };
        let mut outbox_workers =
            vec![OutboxWorker { store: store.clone(), channel: mail, wake: outbox.clone(), options: options.clone() }
                .spawn(stop.clone())];
        // Runs even with no webhook configured: deliveries queued for one that
        // was removed since are settled as failed (and can be replayed) rather
        // than left pending.
        let channel = WebhookChannel::new(&settings);
        let wake = webhooks.wake.clone();
        outbox_workers.push(OutboxWorker { store: store.clone(), channel, wake, options }.spawn(stop.clone()));
        let mut producers = vec![("file sweep", retention::spawn_file_sweep(store.clone(), &settings, stop.clone()))];
        if settings.privacy.retention_days > 0 {
            producers.push(("retention", retention::spawn(store.clone(), settings.clone(), stop.clone())));
        }

        let listener = TcpListener::bind(settings.listen_address())
            .with_context(|| format!("cannot listen on {}", settings.listen_address()))?;
        let address = listener.local_addr()?;
        let guard = Arc::new(Guard::new(&settings).await?);
        producers.push(("limiter housekeeping", guard.spawn_housekeeping(Duration::from_secs(10), stop.clone())));
        let limits = &settings.limits;
        let rate_limit_policy =
            format!("\"ip\";q={};w=60, \"email\";q={};w=3600", limits.per_ip_per_minute, limits.per_email_per_hour);
        let state = web::Data::new(AppState {
            settings: settings.clone(),
            forms,
            guard,
            outbox,
            rate_limit_policy,
            store,
            metrics,
            in_flight: Mutex::new(HashSet::new()),
            console: routes::console::Console::new(&settings, address)
                .context("cannot load the console's templates")?,
        });
        let server = http_server(listener, state, &settings)?;
        let shutdown_timeout = Duration::from_secs(settings.server.shutdown_timeout_seconds);
        let tasks = BackgroundTasks { stop, producers, outbox_workers, writer: writer_task };
        let signals = Box::pin(shutdown_signals().context("cannot listen for SIGTERM")?);
        Ok(Self { address, server, signals, tasks, shutdown_timeout })
    }

    pub fn address(&self) -> std::net::SocketAddr {
        self.address
    }

    /// Serves until SIGINT or SIGTERM, then stops in the order the module doc
    /// gives, all within `server.shutdown_timeout_seconds` of the signal: the
    /// requests in flight may take all of it, the background tasks what remains.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let mut server = self.server;
        let handle = server.handle();
        let served = tokio::select! {
            served = &mut server => served,
            () = self.signals => {
                tracing::info!("shutdown started");
                let deadline = Instant::now() + self.shutdown_timeout;
                // Stops accepting, then waits for the requests in flight. The
                // server's own future carries out the stop, so it is polled too.
                let ((), served) = tokio::join!(handle.stop(true), server);
                // No handler holds a writer handle any more.
                return self.tasks.stop(deadline).await.and(served.map_err(Into::into));
            }
        };
        // The server ended by itself (an error): stop the rest all the same.
        let stopped = self.tasks.stop(Instant::now() + self.shutdown_timeout).await;
        served?;
        stopped
    }
}

/// Opens and migrates the database and starts its writer (see [`Store::open`]).
pub async fn open_store(
    settings: &Settings,
    outbox: Arc<Notify>,
    webhooks: Arc<WebhookPlan>,
) -> anyhow::Result<(Store, JoinHandle<()>)> {
    let options = StoreOptions {
        group_commit: settings.database.group_commit,
        batch_max: settings.database.batch_max,
        commit_delay: Duration::from_micros(settings.database.commit_delay_us),
        message_id_domain: mail::message_id_domain(&settings.mail),
        webhooks,
        files_dir: settings.storage.files_dir.clone(),
    };
    Store::open(&settings.database, options, outbox).await.context("cannot open the database")
}

/// Resolves at the first SIGTERM or SIGINT (Ctrl-C).
fn shutdown_signals() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}

/// The HTTP server: actix-web's `HttpServer`, assembled by hand for what it does
/// not offer: an `Expect: 100-continue` check (see [`refuse_oversized`]) and a
/// problem for a request head actix-http cannot parse (see [`Connection`]).
fn http_server(listener: TcpListener, state: web::Data<AppState>, settings: &Settings) -> std::io::Result<Server> {
    let demo_page = settings.server.demo_page;
    let console = settings.admin.console;
    let body_limit = settings.server.body_limit_bytes;
    let upload_limit = settings.server.upload_limit_bytes;
    let client_timeout = settings.server.client_timeout();
    let local = listener.local_addr()?;
    let builder = actix_server::Server::build();
    let shutdown = builder.graceful_shutdown_signal();
    let workers = match settings.server.workers {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    Ok(builder
        .workers(workers)
        .shutdown_timeout(settings.server.shutdown_timeout_seconds)
        // SIGTERM and SIGINT are ours (`run_until_stopped`): one deadline for all.
        .disable_signals()
        .listen("inquiryd", listener, move || {
            let app = App::new()
                .app_data(state.clone())
                .wrap(from_fn(telemetry::request_span))
                .configure(|cfg| routes::configure(cfg, demo_page, console))
                .default_service(web::to(|| async { Err::<actix_web::HttpResponse, _>(Problem::NotFound) }));
            let shutdown = shutdown.clone();
            let http = HttpService::build()
                .graceful_shutdown_signal(move || {
                    let shutdown = shutdown.clone();
                    async move { shutdown.notified().await }
                })
                .client_request_timeout(client_timeout)
                .local_addr(local)
                .expect(fn_service(move |req: Request| refuse_oversized(req, body_limit, upload_limit)))
                .finish(map_config(app, move |_| AppConfig::default()));
            fn_service(|io: TcpStream| async move {
                let peer = io.peer_addr().ok();
                Ok::<_, DispatchError>((Connection::new(io), Protocol::Http1, peer))
            })
            .and_then(http)
        })?
        .run())
}

/// Answers `Expect: 100-continue` with a 413 problem at once, instead of inviting
/// a body that `server.body_limit_bytes` (`upload_limit_bytes` for
/// `multipart/form-data`) would refuse after it was sent.
async fn refuse_oversized(req: Request, body_limit: usize, upload_limit: usize) -> Result<Request, actix_web::Error> {
    let multipart = req
        .head()
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("multipart/form-data"));
    let limit = if multipart { upload_limit } else { body_limit };
    let declared =
        req.head().headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(Problem::TooLarge { limit }.into());
    }
    Ok(req)
}

/// The process-wide Prometheus recorder, installed once.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("inquiryd_group_commit_batch_size".to_owned()),
                    &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0],
                )
                .expect("static buckets are valid")
                .set_buckets_for_metric(
                    Matcher::Full("inquiryd_store_transaction_seconds".to_owned()),
                    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0],
                )
                .expect("static buckets are valid")
                .set_buckets_for_metric(
                    Matcher::Full("inquiryd_http_request_duration_seconds".to_owned()),
                    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0],
                )
                .expect("static buckets are valid")
                .set_buckets_for_metric(
                    Matcher::Full("inquiryd_notification_lag_seconds".to_owned()),
                    &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0],
                )
                .expect("static buckets are valid");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}
