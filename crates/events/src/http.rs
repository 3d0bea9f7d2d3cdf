//! The `http` sink: one `POST` per event in CloudEvents binary content
//! mode. Accepted means a 2xx answer within the sink's `timeout`; anything
//! else (another status, a refused connection, no answer in time) is a
//! failure the delivery retries.
//!
//! Credentials as zot sends them: Basic with `username` (and `password`),
//! else `Bearer <token>`. `tlsConfig` adds a CA (to the system's roots) and
//! a client certificate. `proxy` is used when set; without it no proxy is
//! used (the environment's proxy variables are not read).

use zot_config::SinkConfig;
use zot_meta::OutboxEvent;

use crate::SinkError;
use crate::cloudevent;

pub(crate) struct HttpSink {
    client: reqwest::Client,
    url: reqwest::Url,
    channel: Option<String>,
    headers: Vec<(String, String)>,
    username: Option<String>,
    password: Option<String>,
    token: Option<String>,
}

impl HttpSink {
    pub(crate) fn new(cfg: &SinkConfig) -> Result<HttpSink, SinkError> {
        let setup = |what: &str, e: &dyn std::fmt::Display| {
            SinkError::Setup(format!("{}: {what}: {e}", cfg.address))
        };
        let url: reqwest::Url = cfg.address.parse().map_err(|e| setup("address", &e))?;
        let mut b = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .tls_version_min(reqwest::tls::Version::TLS_1_2);
        b = match &cfg.proxy {
            Some(p) => b.proxy(reqwest::Proxy::all(p).map_err(|e| setup("proxy", &e))?),
            None => b.no_proxy(),
        };
        if let Some(ca) = &cfg.tls.ca_cert_file {
            let pem = std::fs::read(ca).map_err(|e| setup("tlsConfig.caCertFile", &e))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| setup("tlsConfig.caCertFile", &e))?
            {
                b = b.add_root_certificate(cert);
            }
        }
        if let (Some(cert), Some(key)) = (&cfg.tls.cert_file, &cfg.tls.key_file) {
            let mut pem = std::fs::read(cert).map_err(|e| setup("tlsConfig.certFile", &e))?;
            pem.extend(std::fs::read(key).map_err(|e| setup("tlsConfig.keyFile", &e))?);
            let id = reqwest::Identity::from_pem(&pem).map_err(|e| setup("tlsConfig", &e))?;
            b = b.identity(id);
        }
        let client = b.build().map_err(|e| setup("client", &e))?;
        Ok(HttpSink {
            client,
            url,
            channel: cfg.channel.clone(),
            headers: cfg
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            username: cfg.credentials.username.clone(),
            password: cfg.credentials.password.clone(),
            token: cfg.credentials.token.clone(),
        })
    }

    pub(crate) async fn send(&self, event: &OutboxEvent) -> Result<(), SinkError> {
        let mut req = self.client.post(self.url.clone());
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        for (k, v) in cloudevent::binary_headers(event, self.channel.as_deref()) {
            req = req.header(k, v);
        }
        if let Some(user) = &self.username {
            req = req.basic_auth(user, self.password.as_ref());
        } else if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        let resp = req
            .body(event.data.clone())
            .send()
            .await
            .map_err(|e| SinkError::Send(error_chain(&e)))?;
        let status = resp.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(SinkError::Refused(format!("answered {status}")))
        }
    }
}

/// An error with its causes (reqwest's own message says little).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}
