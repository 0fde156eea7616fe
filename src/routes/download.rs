//! An uploaded file handed to staff (the admin API and the console): always as
//! an attachment, never rendered by the browser, whatever its type or name.

use actix_web::http::header::{self, ContentDisposition, DispositionParam, DispositionType, HeaderValue};
use actix_web::HttpResponse;
use bytes::BytesMut;
use futures_util::stream;
use tokio::io::AsyncReadExt;

use crate::domain::StoredFile;
use crate::problem::Problem;
use crate::store::Store;

const CHUNK: usize = 64 * 1024;

/// The file `file` of inquiry `id`, streamed from `files_dir`; 404 when the
/// inquiry or the file is unknown.
pub async fn file(store: &Store, id: &str, file: &str) -> Result<HttpResponse, Problem> {
    let (inquiry, _) = store.get(id).await?.ok_or(Problem::NotFound)?;
    let (_, stored) =
        StoredFile::all(&inquiry.fields).into_iter().find(|(_, f)| f.id == file).ok_or(Problem::NotFound)?;
    let path = store.blobs().path_of(&stored.sha256).ok_or(Problem::NotFound)?;
    let opened = tokio::fs::File::open(&path).await.map_err(|error| {
        tracing::error!(%error, inquiry = id, "a stored file is missing from files_dir");
        Problem::NotFound
    })?;
    let body = stream::unfold(opened, |mut file| async move {
        let mut buffer = BytesMut::zeroed(CHUNK);
        match file.read(&mut buffer).await {
            Ok(0) => None,
            Ok(n) => {
                buffer.truncate(n);
                Some((Ok::<_, std::io::Error>(buffer.freeze()), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    });
    let disposition = ContentDisposition {
        disposition: DispositionType::Attachment,
        parameters: vec![
            DispositionParam::Filename(ascii_fallback(&stored.name)),
            DispositionParam::FilenameExt(header::ExtendedValue {
                charset: header::Charset::Ext("UTF-8".to_owned()),
                language_tag: None,
                value: stored.name.clone().into_bytes(),
            }),
        ],
    };
    let content_type =
        HeaderValue::from_str(&stored.kind).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header(disposition)
        .insert_header((header::CONTENT_LENGTH, stored.size))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CONTENT_SECURITY_POLICY, "sandbox; default-src 'none'"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .streaming(body))
}

/// The name in printable ASCII without quotes or backslashes, for clients
/// that do not read `filename*`.
fn ascii_fallback(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect()
}
