//! `multipart/form-data` (every form takes it; a form with file fields takes its
//! files only this way): read as a stream, each
//! file written to a temporary file in `files_dir` as it arrives (hashed on the
//! way), every limit enforced while reading: the whole body
//! (`server.upload_limit_bytes`), its text (`server.body_limit_bytes`), each
//! file (`max_bytes`), how many (`max_files`). A refused or abandoned upload
//! leaves nothing behind: the temporary files are removed when dropped.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io;
use std::rc::Rc;

use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::domain::{clean_name, sniff, CustomField, FieldError, FieldKind, Form, StoredFile};
use crate::problem::{Malformed, Problem};
use crate::store::blobs::{is_full, Blobs, Incoming};
use crate::store::Store;

/// A multipart body read in full: the fields (each file field's value the list
/// of its files), the files waiting to be persisted, and what was wrong with them.
pub struct Received {
    pub fields: Map<String, Value>,
    pub files: Vec<Incoming>,
    /// File errors, to be reported with the other fields' errors.
    pub errors: Vec<FieldError>,
    /// Identifies the submission for an Idempotency-Key: its fields and the
    /// files' hashes, not the body's bytes (a new boundary on every retry).
    pub request_hash: [u8; 32],
}

/// The limits one body is read under.
pub struct Limits {
    pub upload: usize,
    pub text: usize,
}

/// Reads the body of a submission to `form`.
pub async fn read(
    req: &HttpRequest,
    payload: web::Payload,
    form: &Form,
    blobs: &Blobs,
    limits: Limits,
) -> Result<Received, Problem> {
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limits.upload) {
        return Err(Problem::TooLarge { limit: limits.upload });
    }
    let over = Rc::new(Cell::new(false));
    let counted = {
        let (over, mut total, limit) = (over.clone(), 0usize, limits.upload);
        payload.map(move |chunk| {
            let chunk = chunk?;
            total += chunk.len();
            if total > limit {
                over.set(true);
                return Err(actix_web::error::PayloadError::Overflow);
            }
            Ok(chunk)
        })
    };
    let mut multipart = Multipart::new(req.headers(), counted);
    let broken = |e: actix_multipart::MultipartError| {
        if over.get() {
            Problem::TooLarge { limit: limits.upload }
        } else {
            Problem::Malformed(Malformed::Unreadable(format!("not valid multipart/form-data: {e}")))
        }
    };

    let mut fields = Map::new();
    let mut text_bytes = 0usize;
    let mut files = Vec::new();
    let mut listed: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut errors: Vec<FieldError> = Vec::new();
    let mut hash = Sha256::new();
    while let Some(part) = multipart.next().await {
        let mut part = part.map_err(broken)?;
        let name = part.name().unwrap_or_default().to_owned();
        let filename = part.content_disposition().and_then(|d| d.get_filename()).map(str::to_owned);
        let declared = part.content_type().map(|m| m.essence_str().to_owned());
        let field = form.field(&name).filter(|f| f.kind == FieldKind::File);
        let (Some(field), Some(filename)) = (field, filename.clone()) else {
            if filename.is_some() || field.is_some() {
                // A file where the form wants text, or text where it wants a file.
                let why = format!("{name} is not a file field of this form");
                if !errors.iter().any(|e| e.field == name) {
                    errors.push(match field {
                        Some(f) => wrong_part(f),
                        None => FieldError::new(name.clone(), "unknown_field", why),
                    });
                }
                drain(&mut part).await.map_err(broken)?;
                continue;
            }
            let mut text = Vec::new();
            while let Some(chunk) = part.next().await {
                let chunk = chunk.map_err(broken)?;
                text_bytes += chunk.len();
                if text_bytes > limits.text {
                    return Err(Problem::TooLarge { limit: limits.text });
                }
                text.extend_from_slice(&chunk);
            }
            let text = String::from_utf8(text)
                .map_err(|_| Problem::Malformed(Malformed::Form(format!("the value of {name} is not UTF-8"))))?;
            fields.insert(name, Value::String(text));
            continue;
        };
        let rules = field.upload.as_ref().expect("a file field has upload rules");
        let so_far = listed.get(&name).map_or(0, Vec::len);
        if so_far >= rules.max_files {
            if !errors.iter().any(|e| e.field == name && e.code == "too_many_files") {
                let label = field.labels.get("en");
                let why = format!("{label} takes at most {} files", rules.max_files);
                errors.push(
                    FieldError::new(name.clone(), "too_many_files", why)
                        .with_label(&field.labels)
                        .with_max(rules.max_files),
                );
            }
            drain(&mut part).await.map_err(broken)?;
            continue;
        }
        let mut incoming = blobs.receive().await.map_err(storage)?;
        while let Some(chunk) = part.next().await {
            let chunk = chunk.map_err(broken)?;
            if incoming.size() + chunk.len() as u64 > rules.max_bytes {
                drop(incoming);
                // The rest is read and thrown away (within the body's limit and
                // time), so that a browser still sending it gets the answer
                // rather than a reset connection.
                let mut rest_readable = drain(&mut part).await.is_ok();
                // The multipart stream moves on only once this part is gone.
                drop(part);
                while rest_readable {
                    let Some(Ok(mut rest)) = multipart.next().await else { break };
                    rest_readable = drain(&mut rest).await.is_ok();
                }
                return Err(Problem::FileTooLarge(vec![too_large(field, rules.max_bytes)]));
            }
            incoming.write(&chunk).await.map_err(storage)?;
        }
        if incoming.size() == 0 {
            // A browser sends an empty, unnamed part for a file input left empty.
            if !filename.is_empty() {
                let label = field.labels.get("en");
                errors.push(
                    FieldError::new(name.clone(), "empty_file", format!("{label} is an empty file"))
                        .with_label(&field.labels),
                );
            }
            continue;
        }
        let kind = match sniff(incoming.head(), declared.as_deref()) {
            Ok(kind) if rules.accepts(&kind) => kind,
            _ => {
                let label = field.labels.get("en");
                let why = format!("{label} is not a type of file this form accepts");
                errors.push(FieldError::new(name.clone(), "invalid_file_type", why).with_label(&field.labels));
                continue;
            }
        };
        let sha256 = incoming.sha256();
        let stored = StoredFile {
            id: uuid::Uuid::new_v4().simple().to_string(),
            name: clean_name(&filename),
            size: incoming.size(),
            kind: kind.mime,
            sha256,
        };
        for part in [name.as_str(), &stored.name, &stored.sha256] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        listed.entry(name).or_default().push(serde_json::to_value(&stored).unwrap_or(Value::Null));
        files.push(incoming);
    }
    for (name, list) in listed {
        fields.insert(name, Value::Array(list));
    }
    // Text fields in name order (the map is sorted), then the files.
    hash.update(
        Value::Object(fields.iter().filter(|(_, v)| v.is_string()).map(|(k, v)| (k.clone(), v.clone())).collect())
            .to_string(),
    );
    Ok(Received { fields, files, errors, request_hash: hash.finalize().into() })
}

/// The errors of file fields given in a body that cannot carry files (JSON, a
/// form without `enctype="multipart/form-data"`); an empty value counts as not given.
pub fn refuse_files_in(fields: &mut Map<String, Value>, form: &Form) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for field in form.fields.iter().filter(|f| f.kind == FieldKind::File) {
        match fields.get(&field.name) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.trim().is_empty() => {
                fields.remove(&field.name);
            }
            Some(_) => {
                fields.remove(&field.name);
                errors.push(wrong_part(field));
            }
        }
    }
    errors
}

/// Persists the received files (durable under their hashes) and runs `commit`
/// while no removal of unnamed files can run; afterwards removes the files of a
/// submission that was not stored (a repeat, a refusal, a failure) unless
/// another inquiry names them.
pub async fn persist_then<T>(
    store: &Store,
    files: Vec<Incoming>,
    commit: impl std::future::Future<Output = (T, bool)>,
) -> Result<T, Problem> {
    if files.is_empty() {
        return Ok(commit.await.0);
    }
    let mut hashes = Vec::with_capacity(files.len());
    let outcome = {
        let _committing = store.blobs().committing().await;
        let mut failed = None;
        for incoming in files {
            match store.blobs().persist(incoming).await {
                Ok(persisted) => hashes.push(persisted.sha256),
                Err(error) => {
                    failed = Some(storage(error));
                    break;
                }
            }
        }
        match failed {
            Some(problem) => Err(problem),
            None => Ok(commit.await),
        }
    };
    let stored = matches!(outcome, Ok((_, true)));
    if !stored {
        if let Err(error) = store.release_files(hashes).await {
            tracing::warn!(%error, "files of a submission not stored could not be removed yet");
        }
    }
    outcome.map(|(value, _)| value)
}

async fn drain(part: &mut actix_multipart::Field) -> Result<(), actix_multipart::MultipartError> {
    while let Some(chunk) = part.next().await {
        chunk?;
    }
    Ok(())
}

fn wrong_part(field: &CustomField) -> FieldError {
    let label = field.labels.get("en");
    FieldError::new(field.name.clone(), "invalid_type", format!("{label} must be sent as a file (multipart/form-data)"))
        .with_label(&field.labels)
}

fn too_large(field: &CustomField, max: u64) -> FieldError {
    let label = field.labels.get("en");
    FieldError::new(field.name.clone(), "too_large", format!("{label} must be at most {max} bytes per file"))
        .with_label(&field.labels)
        .with_max(max as usize)
}

/// A file that could not be written: the disk is full or failing; nothing was kept.
fn storage(error: io::Error) -> Problem {
    if is_full(&error) {
        tracing::warn!("the files directory is full; upload refused");
    } else {
        tracing::warn!(%error, "cannot write an upload to the files directory");
    }
    Problem::Unavailable { retry_after: 5 }
}
