//! The TCP stream under the HTTP server. actix-http answers a request head it
//! cannot parse (raw UTF-8 in the target, a bad `Content-Length` or
//! `Transfer-Encoding`) with a bare, empty 400 before any of our code runs, and
//! offers no hook; SPEC wants every error as problem+json. That 400 is always
//! the last thing written on its connection (actix closes it after), so the
//! stream rewrites it there, and only there: an empty 400 at the very end of a
//! write. Our own 400s always carry a body.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use actix_web::rt::net::TcpStream;
use actix_web::ResponseError;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::problem::Problem;

const BARE_400: &[u8] = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n";

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

/// Where the bare 400 starts in `buf`, when `buf` ends with it: its head, then only
/// `connection: close` and `date`, then the blank line.
fn bare_400_at(buf: &[u8]) -> Option<usize> {
    if !buf.ends_with(b"GMT\r\n\r\n") {
        return None;
    }
    // The bare 400 with its headers is under 128 bytes: look no further back.
    let from = buf.len().saturating_sub(128);
    let start = from + buf[from..].windows(BARE_400.len()).rposition(|w| w == BARE_400)?;
    let rest = &buf[start + BARE_400.len()..];
    let rest = rest.strip_prefix(b"connection: close\r\n".as_slice()).unwrap_or(rest);
    let date = rest.strip_prefix(b"date: ".as_slice())?;
    let short = date.len() == "Sun, 29 Nov 2026 00:40:39 GMT\r\n\r\n".len();
    (short && !date[..date.len() - 4].contains(&b'\n')).then_some(start)
}

/// The problem+json answer that replaces the bare 400.
fn problem_400() -> Vec<u8> {
    let problem = Problem::BadRequest(
        "The request is not valid HTTP/1.1: the target must be a path of ASCII characters \
         (percent-encode the rest), and Content-Length and Transfer-Encoding must be well-formed."
            .to_owned(),
    );
    let body = problem.error_response().into_body();
    let body = actix_web::body::MessageBody::try_into_bytes(body).unwrap_or_default();
    let mut out = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
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
        let Some(start) = bare_400_at(buf) else {
            return Pin::new(&mut self.inner).poll_write(cx, buf);
        };
        self.pending.extend_from_slice(&buf[..start]);
        self.pending.extend_from_slice(&problem_400());
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
    fn finds_only_a_bare_400_at_the_end() {
        let alone = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\ndate: Sun, 29 Nov 2026 00:40:39 GMT\r\n\r\n";
        assert_eq!(bare_400_at(alone), Some(0));
        let pipelined = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ndate: Sun, 29 Nov 2026 00:40:39 GMT\r\n\r\n{}\
HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: Sun, 29 Nov 2026 00:40:39 GMT\r\n\r\n";
        let second = pipelined.windows(12).position(|w| w == b"HTTP/1.1 400");
        assert_eq!(bare_400_at(pipelined), second);
        let ours =
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 120\r\ncontent-type: application/problem+json\r\n\r\n{}";
        assert_eq!(bare_400_at(ours), None);
        let later_header = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nx-request-id: 1\r\ndate: Sun, 29 Nov 2026 00:40:39 GMT\r\n\r\n";
        assert_eq!(bare_400_at(later_header), None);
        let body = problem_400();
        assert!(body.starts_with(b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\n"));
        assert!(String::from_utf8_lossy(&body).contains("\"status\":400"));
    }
}
