//! The integration tests, one binary (the shared helpers in `common` compile
//! once): each module drives the real `inquiryd` binary over HTTP, SMTP and
//! its command line, on SQLite or, with `INQUIRYD_TEST_DATABASE_URL`, PostgreSQL.

mod common;

mod abuse;
mod admin;
mod console;
mod email;
mod faults;
mod http;
mod intake;
mod operations;
mod replicas;
mod uploads;
mod webhooks;
