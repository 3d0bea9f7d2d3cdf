//! Plain-HTTP access to the registry for protocol-level assertions.
//!
//! [`Client`] never turns a status code into an error: tests assert on status,
//! headers and body themselves. [`raw_request`] writes the request line byte
//! for byte over a socket, for paths (`..`, `%2e`) that an HTTP library might
//! normalise before sending.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

/// A response, fully read.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// First value of a header (name matched case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {self}"))
    }

    /// Panics, showing the whole response, unless the status is `status`.
    pub fn expect_status(&self, status: u16, context: &str) -> &Self {
        assert_eq!(
            self.status, status,
            "{context}: expected HTTP {status}, got {self}"
        );
        self
    }

    /// Asserts an OCI error response: the status, a JSON body
    /// `{"errors":[{"code":CODE,"message":STRING,...}]}` and the code.
    pub fn expect_oci_error(&self, status: u16, code: &str, context: &str) {
        self.expect_status(status, context);
        let body: Value = serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{context}: error body is not JSON ({e}): {self}"));
        let errors = body["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("{context}: no `errors` array in {self}"));
        assert!(
            !errors.is_empty(),
            "{context}: empty `errors` array in {self}"
        );
        for error in errors {
            assert!(
                error["code"].is_string(),
                "{context}: error without a string `code`: {self}"
            );
            assert!(
                error["message"].is_string(),
                "{context}: error without a string `message`: {self}"
            );
        }
        let codes: Vec<&str> = errors.iter().filter_map(|e| e["code"].as_str()).collect();
        assert!(
            codes.contains(&code),
            "{context}: expected error code {code}, got {codes:?}: {self}"
        );
        let content_type = self.header("content-type").unwrap_or("");
        assert!(
            content_type.starts_with("application/json"),
            "{context}: error Content-Type should be application/json, got {content_type:?}: {self}"
        );
    }
}

impl std::fmt::Display for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "HTTP {}", self.status)?;
        for (k, v) in &self.headers {
            writeln!(f, "{k}: {v}")?;
        }
        let text = self.text();
        let shown: String = text.chars().take(2000).collect();
        write!(f, "\n{shown}")
    }
}

/// A plain-HTTP client bound to one registry base URL.
#[derive(Clone)]
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    pub fn new(base: &str) -> Client {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(60)))
            .build();
        Client {
            base: base.trim_end_matches('/').to_owned(),
            agent: config.into(),
        }
    }

    /// `path` is either a path (`/v2/...`) or an absolute URL, such as a
    /// `Location` header may hold.
    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// Send a request; transport errors (connection refused, reset) are
    /// returned, HTTP error statuses are not errors.
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Response, String> {
        let mut builder = ureq::http::Request::builder()
            .method(method)
            .uri(self.url(path));
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let result = match body {
            Some(body) => {
                let request = builder.body(body).map_err(|e| e.to_string())?;
                self.agent.run(request)
            }
            None => {
                let request = builder.body(()).map_err(|e| e.to_string())?;
                self.agent.run(request)
            }
        };
        let response = result.map_err(|e| format!("{method} {path}: {e}"))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = if method == "HEAD" {
            Vec::new()
        } else {
            response
                .into_body()
                .with_config()
                .limit(1 << 30)
                .read_to_vec()
                .map_err(|e| format!("{method} {path}: reading body: {e}"))?
        };
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Response {
        self.try_request(method, path, headers, body)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], None)
    }

    pub fn head(&self, path: &str) -> Response {
        self.request("HEAD", path, &[], None)
    }

    /// Monolithic upload (POST, then PUT with the bytes and the digest).
    /// Returns the digest.
    pub fn try_push_blob(&self, repo: &str, bytes: &[u8]) -> Result<String, String> {
        let digest = super::sha256_digest(bytes);
        let start = self.try_request(
            "POST",
            &format!("/v2/{repo}/blobs/uploads/"),
            &[],
            Some(b""),
        )?;
        if start.status != 202 {
            return Err(format!("POST upload: expected 202, got {start}"));
        }
        let location = start
            .header("location")
            .ok_or_else(|| format!("POST upload: no Location: {start}"))?;
        let sep = if location.contains('?') { '&' } else { '?' };
        let put_url = format!("{location}{sep}digest={digest}");
        let put = self.try_request(
            "PUT",
            &put_url,
            &[("content-type", "application/octet-stream")],
            Some(bytes),
        )?;
        if put.status != 201 {
            return Err(format!("PUT upload {put_url}: expected 201, got {put}"));
        }
        Ok(digest)
    }

    pub fn push_blob(&self, repo: &str, bytes: &[u8]) -> String {
        self.try_push_blob(repo, bytes)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn try_put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Response, String> {
        self.try_request(
            "PUT",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("content-type", media_type)],
            Some(bytes),
        )
    }

    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Response {
        self.try_put_manifest(repo, reference, media_type, bytes)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// GET a manifest accepting every media type the tests use.
    pub fn get_manifest(&self, repo: &str, reference: &str) -> Response {
        self.request(
            "GET",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("accept", ACCEPT_ALL)],
            None,
        )
    }
}

/// An `Accept` header listing every manifest type in play.
pub const ACCEPT_ALL: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json";

/// Send one HTTP/1.1 request with the request target exactly as given.
pub fn raw_request(
    addr: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("set timeout");
    let mut request =
        format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || matches!(method, "PUT" | "POST" | "PATCH") {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).expect("write request");
    stream.write_all(body).expect("write body");
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("{method} {target}: reading response: {e}"));
    parse_response(&raw).unwrap_or_else(|| {
        panic!(
            "{method} {target}: unparseable response: {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

fn parse_response(raw: &[u8]) -> Option<Response> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Some(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}
