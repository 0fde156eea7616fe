//! The TCP stream under the HTTP server. actix-http answers some requests by
//! itself, with a bare, empty status before any of our code runs, and offers no
//! hook: 400 for a head it cannot parse (raw UTF-8 in the target, a bad
//! `Content-Length` or `Transfer-Encoding`), 408 for a head that does not arrive
//! within `server.client_timeout_seconds`, 431 for oversized headers. SPEC wants
//! every error as problem+json. Such an answer is always the last thing written on
//! its connection (actix closes it after), so the stream rewrites it there, and
//! only there: an empty answer of one of those statuses at the very end of a
//! write. Our own error answers always carry a body.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use actix_web::rt::net::TcpStream;
use actix_web::ResponseError;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::problem::Problem;

pub struct Connection {
    inner: TcpStream,
    /// Bytes accepted from the server but not yet written to the socket.
    pending: Vec<u8>,
    written: usize,
}

impl Connection {
    pub fn new(inner: TcpStream) -> Self {
        Self { inner, pending: Vec::new(), written: 0 }
    }

    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

/// The empty answers actix-http writes by itself, and the problem each becomes.
fn bare_answers() -> [(&'static [u8], Problem); 3] {
    [
        (
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
            Problem::BadRequest(
                "The request is not valid HTTP/1.1: the target must be a path of ASCII characters \
                 (percent-encode the rest), and Content-Length and Transfer-Encoding must be well-formed."
                    .to_owned(),
            ),
        ),
        (b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n", Problem::HeadTimeout),
        (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n", Problem::HeadersTooLarge),
    ]
}

/// Where a bare answer starts in `buf`, when `buf` ends with one (its head, then
/// only `connection: close` and `date`, then the blank line), and its problem.
fn bare_answer_at(buf: &[u8]) -> Option<(usize, Problem)> {
    if !buf.ends_with(b"GMT\r\n\r\n") {
        return None;
    }
    // A bare answer with its headers is under 160 bytes: look no further back.
    let from = buf.len().saturating_sub(160);
    bare_answers().into_iter().find_map(|(head, problem)| {
        let start = from + buf[from..].windows(head.len()).rposition(|w| w == head)?;
        let rest = &buf[start + head.len()..];
        let rest = rest.strip_prefix(b"connection: close\r\n".as_slice()).unwrap_or(rest);
        let date = rest.strip_prefix(b"date: ".as_slice())?;
        let short = date.len() == "Sun, 29 Nov 2026 00:40:39 GMT\r\n\r\n".len();
        (short && !date[..date.len() - 4].contains(&b'\n')).then_some((start, problem))
    })
}

/// The problem+json answer that replaces a bare one; the connection closes after it.
fn problem_answer(problem: &Problem) -> Vec<u8> {
    let response = problem.error_response();
    let status = response.status();
    let body = actix_web::body::MessageBody::try_into_bytes(response.into_body()).unwrap_or_default();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    out
}

impl AsyncRead for Connection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.drain(cx))?;
        let Some((start, problem)) = bare_answer_at(buf) else {
            return Pin::new(&mut self.inner).poll_write(cx, buf);
        };
        self.pending.extend_from_slice(&buf[..start]);
        self.pending.extend_from_slice(&problem_answer(&problem));
        // The bytes are ours now; whatever the socket does not take yet is written
        // by the flush or shutdown that follows.
        let _ = self.drain(cx)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_only_a_bare_answer_at_the_end() {
        let status = |found: Option<(usize, Problem)>| found.map(|(at, p)| (at, p.status_code().as_u16()));
        let alone = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\ndate: Sun, 29 Nov 2026 00:40:39 GMT\r\n\r\n";
        assert_eq!(status(bare_answer_at(alone)), Some((0, 400)));
        let pipelined = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ndate: Sun, 29 Nov 2026 00:40:39 GMT\r\n\r\n{}\
HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: Sun, 29 Nov 2026 00:40:39 GMT\r\n\r\n";
        let second = pipelined.windows(12).position(|w| w == b"HTTP/1.1 400");
        assert_eq!(status(bare_answer_at(pipelined)), second.map(|at| (at, 400)));
        let timeout = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\ndate: Sun, 29 Nov 2026 01:04:33 GMT\r\n\r\n";
        assert_eq!(status(bare_answer_at(timeout)), Some((0, 408)));
        let large = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\ndate: Sun, 29 Nov 2026 01:04:38 GMT\r\n\r\n";
        assert_eq!(status(bare_answer_at(large)), Some((0, 431)));
        let ours =
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 120\r\ncontent-type: application/problem+json\r\n\r\n{}";
        assert!(bare_answer_at(ours).is_none());
        let later_header = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nx-request-id: 1\r\ndate: Sun, 29 Nov 2026 00:40:39 GMT\r\n\r\n";
        assert!(bare_answer_at(later_header).is_none());
        for (_, problem) in bare_answers() {
            let code = problem.status_code().as_u16();
            let answer = String::from_utf8(problem_answer(&problem)).unwrap();
            assert!(answer.starts_with(&format!("HTTP/1.1 {code} ")), "{answer}");
            assert!(answer.contains("content-type: application/problem+json\r\n"), "{answer}");
            assert!(answer.contains(&format!("\"status\":{code}")), "{answer}");
        }
    }
}
