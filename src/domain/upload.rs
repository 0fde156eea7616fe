//! What an uploaded file is: its type, decided from its first bytes (never from
//! its name or the type the client declares), and its name, kept only as
//! display text.

use super::form::UploadRules;

/// How many of a file's first bytes decide its type.
pub const SNIFF_BYTES: usize = 8192;

/// The most characters of a file name kept.
const MAX_NAME_CHARS: usize = 200;

/// A file's type as its bytes show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sniffed {
    /// `application/pdf`, `text/plain`; `application/octet-stream` when unknown.
    pub mime: String,
    /// Without the dot: `pdf`, `docx`, `txt`, `bin`.
    pub ext: String,
}

/// The declared type names another kind of file than the bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contradiction;

/// Zip containers whose declared type refines what the bytes show (their
/// first bytes do not always name the kind of document).
const ZIP_DOCUMENTS: [(&str, &str); 7] = [
    ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"),
    ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
    ("application/vnd.openxmlformats-officedocument.presentationml.presentation", "pptx"),
    ("application/vnd.oasis.opendocument.text", "odt"),
    ("application/vnd.oasis.opendocument.spreadsheet", "ods"),
    ("application/vnd.oasis.opendocument.presentation", "odp"),
    ("application/epub+zip", "epub"),
];

/// The type of a file whose first bytes are `head`, given the type the client
/// declared (`None`, empty or `application/octet-stream`: it did not say).
pub fn sniff(head: &[u8], declared: Option<&str>) -> Result<Sniffed, Contradiction> {
    let found = match infer::get(head) {
        Some(kind) => Sniffed { mime: kind.mime_type().to_owned(), ext: kind.extension().to_owned() },
        None if looks_like_text(head) => Sniffed { mime: "text/plain".to_owned(), ext: "txt".to_owned() },
        None => Sniffed { mime: "application/octet-stream".to_owned(), ext: "bin".to_owned() },
    };
    let declared = declared.map(essence).unwrap_or_default();
    if declared.is_empty() || declared == "application/octet-stream" || declared == found.mime {
        return Ok(found);
    }
    let alias = |a: &str, b: &str| (declared == a && found.mime == b) || (declared == b && found.mime == a);
    if alias("image/jpg", "image/jpeg")
        || alias("image/pjpeg", "image/jpeg")
        || alias("application/x-zip-compressed", "application/zip")
    {
        return Ok(found);
    }
    match found.mime.as_str() {
        // Plain text declared as a kind of text (CSV, Markdown), never as markup a browser runs.
        "text/plain" if declared.starts_with("text/") && declared != "text/html" => Ok(found),
        "application/zip" => match ZIP_DOCUMENTS.iter().find(|(mime, _)| *mime == declared) {
            Some((mime, ext)) => Ok(Sniffed { mime: (*mime).to_owned(), ext: (*ext).to_owned() }),
            None => Err(Contradiction),
        },
        // Bytes of no type we know, declared as one we do not know either: the bytes do not say otherwise.
        "application/octet-stream" if !infer::is_mime_supported(&declared) && !declared.starts_with("text/") => {
            Ok(found)
        }
        _ => Err(Contradiction),
    }
}

/// `image/png; charset=x` → `image/png`.
fn essence(mime: &str) -> String {
    mime.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

/// UTF-8 without NUL bytes (a character cut by the end of `head` allowed).
fn looks_like_text(head: &[u8]) -> bool {
    if head.contains(&0) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    }
}

impl UploadRules {
    /// Whether a file of this type is one `accept` lists.
    pub fn accepts(&self, file: &Sniffed) -> bool {
        self.accept.is_empty()
            || self.accept.iter().any(|entry| match entry.strip_prefix('.') {
                Some(ext) => ext == file.ext || (matches!(ext, "jpeg" | "jpe") && file.ext == "jpg"),
                None => match entry.strip_suffix("/*") {
                    Some(kind) => file.mime.split('/').next() == Some(kind),
                    None => *entry == file.mime,
                },
            })
    }
}

/// An `accept` entry: a MIME type (`application/pdf`, `image/*`) or an extension (`.docx`).
pub fn is_accept_entry(entry: &str) -> bool {
    let entry = entry.trim();
    let token = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    match entry.strip_prefix('.') {
        Some(ext) => token(ext),
        None => match entry.split_once('/') {
            Some((kind, sub)) => token(kind) && (sub == "*" || token(sub)),
            None => false,
        },
    }
}

/// A file name as display text: no directories (whatever separator), no
/// control, format-reordering or invisible characters, no leading dots, at most
/// 200 characters; `file` when nothing is left. Never used as a path.
pub fn clean_name(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let kept: String = base.chars().filter(|c| !c.is_control() && !is_hidden_format(*c)).take(MAX_NAME_CHARS).collect();
    let trimmed = kept.trim().trim_start_matches('.').trim();
    if trimmed.is_empty() {
        "file".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// Characters that reorder or hide text: bidi marks, embeddings, overrides and
/// isolates, zero-width characters, the byte-order mark.
fn is_hidden_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{061C}' | '\u{FEFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
    const PDF: &[u8] = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n";

    fn rules(accept: &[&str]) -> UploadRules {
        UploadRules { max_files: 1, max_bytes: 100, accept: accept.iter().map(|a| (*a).to_owned()).collect() }
    }

    #[test]
    fn the_bytes_decide_the_type() {
        assert_eq!(sniff(PNG, None).unwrap().mime, "image/png");
        assert_eq!(sniff(PDF, Some("application/pdf")).unwrap().ext, "pdf");
        assert_eq!(sniff(PDF, Some("application/octet-stream")).unwrap().mime, "application/pdf");
        assert_eq!(sniff(b"hello, world\n", Some("text/csv")).unwrap().mime, "text/plain");
        // HTML declared as an image, or a PNG declared as a PDF: refused.
        assert_eq!(sniff(b"<html><script>alert(1)</script>", Some("image/png")), Err(Contradiction));
        assert_eq!(sniff(b"<!DOCTYPE html><p>hi", Some("text/plain")), Err(Contradiction));
        assert_eq!(sniff(PNG, Some("application/pdf")), Err(Contradiction));
        assert_eq!(sniff(b"just text", Some("image/png")), Err(Contradiction));
        assert_eq!(sniff(b"PK\x03\x04\x14\0\0\0\x08\0", Some(ZIP_DOCUMENTS[0].0)).unwrap().ext, "docx");
    }

    #[test]
    fn accept_takes_types_wildcards_and_extensions() {
        let png = sniff(PNG, None).unwrap();
        let pdf = sniff(PDF, None).unwrap();
        assert!(rules(&["image/png"]).accepts(&png) && !rules(&["image/png"]).accepts(&pdf));
        assert!(rules(&["image/*"]).accepts(&png));
        assert!(rules(&[".pdf"]).accepts(&pdf) && !rules(&[".pdf"]).accepts(&png));
        assert!(rules(&[]).accepts(&png));
        assert!(is_accept_entry(".docx") && is_accept_entry("image/*") && is_accept_entry("application/pdf"));
        assert!(!is_accept_entry("pdf") && !is_accept_entry("./x") && !is_accept_entry("a/b c"));
    }

    proptest::proptest! {
        /// Whatever a client sends, the name is non-empty display text: no
        /// separator, control or hidden character, no leading dot, at most 200 characters.
        #[test]
        fn any_name_becomes_harmless_display_text(raw in "\\PC*|[./\\\\\u{202E}\u{200B}\r\n\0a-z]{0,40}") {
            let name = clean_name(&raw);
            proptest::prop_assert!(!name.is_empty() && name.chars().count() <= MAX_NAME_CHARS);
            proptest::prop_assert!(!name.starts_with('.') && !name.contains(['/', '\\']));
            proptest::prop_assert!(!name.chars().any(|c| c.is_control() || is_hidden_format(c)));
        }

        /// Sniffing never panics, whatever the bytes and the declared type.
        #[test]
        fn sniffing_takes_any_bytes(head in proptest::collection::vec(proptest::num::u8::ANY, 0..64), declared in "[a-z/+.-]{0,30}") {
            let _ = sniff(&head, Some(&declared));
        }
    }

    #[test]
    fn names_are_display_text_only() {
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("C:\\Users\\me\\cv.pdf"), "cv.pdf");
        assert_eq!(clean_name("<script>.pdf"), "<script>.pdf");
        assert_eq!(clean_name("evil\u{202E}fdp.exe"), "evilfdp.exe");
        assert_eq!(clean_name("a\r\nb\0.txt"), "ab.txt");
        assert_eq!(clean_name(".."), "file");
        assert_eq!(clean_name(".htaccess"), "htaccess");
        assert_eq!(clean_name(&"x".repeat(500)).len(), 200);
    }
}
