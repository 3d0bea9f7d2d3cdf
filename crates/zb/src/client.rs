//! A small HTTP/1.1 client for one registry.
//!
//! Every request carries the Basic credentials if any; every answer other
//! than 2xx is an error naming the method, URL, status and the start of the
//! body (except [`Client::exists`], which takes 404 as an answer). Response
//! bodies are read to the end and counted, and only kept when asked
//! (manifests, listings), so a 1 GiB pull holds one frame at a time.
//! Request bodies are frames sliced from shared buffers, sent either with
//! their `Content-Length` or, when [`Parts::streamed`], with
//! `Transfer-Encoding: chunked` (as containerd and docker stream a layer).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use anyhow::{Context as _, bail};
use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::header::{AUTHORIZATION, CONTENT_LENGTH, HeaderMap, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// How much of an error body goes into the error message.
const ERROR_BODY: usize = 2048;

/// A request body made of frames known in advance (slices of shared
/// buffers). By default its exact length is announced, so the request
/// carries Content-Length; a streamed one announces none and goes out with
/// chunked transfer encoding.
pub struct Parts {
    frames: VecDeque<Bytes>,
    remaining: u64,
    streamed: bool,
}

impl Parts {
    pub fn new(frames: Vec<Bytes>) -> Self {
        let remaining = frames.iter().map(|f| f.len() as u64).sum();
        Parts {
            frames: frames.into(),
            remaining,
            streamed: false,
        }
    }

    /// The same frames without a length: `Transfer-Encoding: chunked`.
    pub fn streamed(frames: Vec<Bytes>) -> Self {
        Parts {
            streamed: true,
            ..Parts::new(frames)
        }
    }

    pub fn empty() -> Self {
        Parts::new(Vec::new())
    }
}

impl Body for Parts {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.frames.pop_front() {
            Some(f) => {
                self.remaining -= f.len() as u64;
                Poll::Ready(Some(Ok(Frame::data(f))))
            }
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        if self.streamed {
            SizeHint::default()
        } else {
            SizeHint::with_exact(self.remaining)
        }
    }
}

/// One answer: headers, how many body bytes came, and the body
/// itself when it was asked for.
#[derive(Debug)]
pub struct Answer {
    pub status: hyper::StatusCode,
    pub headers: HeaderMap,
    pub body_len: u64,
    pub body: Bytes,
}

impl Answer {
    /// The `Location` header resolved against the registry, or an error.
    pub fn location(&self, client: &Client) -> anyhow::Result<String> {
        let loc = self
            .headers
            .get(hyper::header::LOCATION)
            .context("answer has no Location header")?
            .to_str()
            .context("Location header is not ASCII")?;
        Ok(client.resolve(loc))
    }
}

#[derive(Clone)]
pub struct Client {
    http: HyperClient<HttpConnector, Parts>,
    /// `http://host:port`, no trailing slash.
    origin: String,
    auth: Option<HeaderValue>,
}

impl Client {
    /// A client for the registry at `url` (`http://host[:port]`), keeping
    /// up to `connections` idle connections open for reuse.
    pub fn new(url: &str, auth: Option<&str>, connections: usize) -> anyhow::Result<Self> {
        let uri: Uri = url.parse().with_context(|| format!("bad URL {url:?}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => bail!("{url}: scheme {other} is not supported (plain http only)"),
            None => bail!("{url}: give the scheme, e.g. http://127.0.0.1:5000"),
        }
        let authority = uri.authority().context("URL has no host")?;
        let auth = match auth {
            Some(userpass) => {
                if !userpass.contains(':') {
                    bail!("-A wants user:password");
                }
                let value = format!("Basic {}", base64(userpass.as_bytes()));
                Some(HeaderValue::from_str(&value).context("credentials")?)
            }
            None => None,
        };
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = HyperClient::builder(TokioExecutor::new())
            .pool_max_idle_per_host(connections)
            .build(connector);
        Ok(Client {
            http,
            origin: format!("http://{authority}"),
            auth,
        })
    }

    /// The URL of `path` (which starts with `/`) on this registry.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    /// A Location header value as a full URL: absolute ones stay as they are.
    pub fn resolve(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else if location.starts_with('/') {
            self.url(location)
        } else {
            self.url(&format!("/{location}"))
        }
    }

    /// Sends one request; a non-2xx answer is an error. With `keep`, the
    /// body is returned (up to `keep` bytes; more is an error).
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Parts,
        keep: usize,
    ) -> anyhow::Result<Answer> {
        let mut req = Request::builder().method(method.clone()).uri(url);
        if let Some(auth) = &self.auth {
            req = req.header(AUTHORIZATION, auth.clone());
        }
        if method != Method::GET && method != Method::HEAD && !body.streamed {
            req = req.header(CONTENT_LENGTH, body.remaining);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req
            .body(body)
            .with_context(|| format!("{method} {url}: building the request"))?;
        let resp = self
            .http
            .request(req)
            .await
            .with_context(|| format!("{method} {url}"))?;
        let (head, mut incoming) = resp.into_parts();
        let ok = head.status.is_success();
        let limit = if ok { keep } else { ERROR_BODY };
        let mut kept = BytesMut::new();
        let mut body_len = 0u64;
        while let Some(frame) = incoming.frame().await {
            let frame = frame.with_context(|| format!("{method} {url}: reading the body"))?;
            if let Ok(data) = frame.into_data() {
                body_len += data.len() as u64;
                if kept.len() < limit {
                    let take = data.len().min(limit - kept.len());
                    kept.extend_from_slice(&data[..take]);
                } else if ok && keep > 0 {
                    bail!("{method} {url}: body larger than {keep} bytes");
                }
            }
        }
        if !ok {
            bail!(
                "{method} {url}: {}: {}",
                head.status,
                String::from_utf8_lossy(&kept).trim()
            );
        }
        Ok(Answer {
            status: head.status,
            headers: head.headers,
            body_len,
            body: kept.freeze(),
        })
    }
}

impl Client {
    /// Whether `HEAD url` finds something: 2xx yes, 404 no, anything else
    /// is an error.
    pub async fn exists(&self, url: &str, headers: &[(&str, &str)]) -> anyhow::Result<bool> {
        let mut req = Request::builder().method(Method::HEAD).uri(url);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(auth) = &self.auth {
            req = req.header(AUTHORIZATION, auth.clone());
        }
        let req = req
            .body(Parts::empty())
            .with_context(|| format!("HEAD {url}: building the request"))?;
        let resp = self
            .http
            .request(req)
            .await
            .with_context(|| format!("HEAD {url}"))?;
        let status = resp.status();
        resp.into_body()
            .collect()
            .await
            .with_context(|| format!("HEAD {url}: reading the body"))?;
        match status {
            s if s.is_success() => Ok(true),
            hyper::StatusCode::NOT_FOUND => Ok(false),
            s => bail!("HEAD {url}: {s}"),
        }
    }
}

/// Standard base64 with padding (for Basic credentials).
pub fn base64(input: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (k, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if k <= chunk.len() {
                out.push(char::from(ABC[(n >> shift) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
            ("user:pass", "dXNlcjpwYXNz"),
        ] {
            assert_eq!(base64(input.as_bytes()), want, "{input}");
        }
    }

    /// Answers one request with 202 and returns its head and body as sent.
    async fn one_request(listener: tokio::net::TcpListener) -> anyhow::Result<String> {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let (mut conn, _) = listener.accept().await?;
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        // Both bodies below end with the last frame "de".
        while !(seen.ends_with(b"0\r\n\r\n") || seen.ends_with(b"\r\n\r\nabcde")) {
            let n = conn.read(&mut buf).await?;
            anyhow::ensure!(n > 0, "connection closed early");
            seen.extend_from_slice(&buf[..n]);
        }
        conn.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")
            .await?;
        Ok(String::from_utf8_lossy(&seen).to_ascii_lowercase())
    }

    #[tokio::test]
    async fn streamed_bodies_go_chunked_others_with_a_length() -> anyhow::Result<()> {
        let frames = || vec![Bytes::from_static(b"abc"), Bytes::from_static(b"de")];
        for streamed in [true, false] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let url = format!("http://{}", listener.local_addr()?);
            let server = tokio::spawn(one_request(listener));
            let c = Client::new(&url, None, 1)?;
            let body = if streamed {
                Parts::streamed(frames())
            } else {
                Parts::new(frames())
            };
            let answer = c.send(Method::PATCH, &c.url("/u"), &[], body, 0).await?;
            assert_eq!(answer.status, hyper::StatusCode::ACCEPTED);
            let seen = server.await??;
            assert!(seen.starts_with("patch /u http/1.1\r\n"), "{seen}");
            if streamed {
                assert!(seen.contains("transfer-encoding: chunked\r\n"), "{seen}");
                assert!(!seen.contains("content-length"), "{seen}");
                assert!(
                    seen.ends_with("\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"),
                    "{seen}"
                );
            } else {
                assert!(seen.contains("content-length: 5\r\n"), "{seen}");
                assert!(!seen.contains("transfer-encoding"), "{seen}");
            }
        }
        Ok(())
    }

    #[tokio::test]
    async fn urls_and_locations() -> anyhow::Result<()> {
        let c = Client::new("http://127.0.0.1:5000/", None, 1)?;
        assert_eq!(c.url("/v2/"), "http://127.0.0.1:5000/v2/");
        assert_eq!(
            c.resolve("/v2/a/blobs/uploads/x"),
            "http://127.0.0.1:5000/v2/a/blobs/uploads/x"
        );
        assert_eq!(c.resolve("v2/a"), "http://127.0.0.1:5000/v2/a");
        assert_eq!(
            c.resolve("http://other:1/v2/a?x=1"),
            "http://other:1/v2/a?x=1"
        );
        assert!(Client::new("https://h", None, 1).is_err());
        assert!(Client::new("127.0.0.1:5000", None, 1).is_err());
        assert!(Client::new("http://h", Some("nocolon"), 1).is_err());
        Ok(())
    }

    #[test]
    fn parts_know_their_length_unless_streamed() {
        let frames = || vec![Bytes::from_static(b"abc"), Bytes::from_static(b"de")];
        let p = Parts::new(frames());
        assert_eq!(p.size_hint().exact(), Some(5));
        assert!(Parts::empty().is_end_stream());
        let s = Parts::streamed(frames());
        assert_eq!(s.size_hint().exact(), None);
        assert!(!s.is_end_stream());
    }
}
