//! inquiryd: validates, stores and emails a website's contact-form inquiries.

mod cli;
mod config;
mod connection;
mod console;
mod domain;
mod i18n;
mod limits;
mod mail;
mod openapi;
mod outbox;
mod problem;
mod retention;
mod routes;
mod startup;
mod store;
mod telemetry;
mod timestamp;
pub mod webhooks;

pub use cli::{run, Cli};

/// The edge parsers, for the fuzz targets (`fuzz/`).
pub mod fuzzing {
    pub use crate::domain::{
        ascii_address, normalize_email, parse_query, parse_submission, EmailAddress, Form, Purpose, SubmissionRules,
    };
    pub use crate::store::match_query;
}
