//! inquiryd: validates, stores and emails a website's contact-form inquiries.

pub mod cli;
pub mod config;
pub mod domain;
pub mod limits;
pub mod mail;
pub mod openapi;
pub mod problem;
pub mod retention;
pub mod routes;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod timestamp;
