//! The `nats` sink: each event published to the sink's `channel` (the
//! subject) as one CloudEvents structured JSON message, over core NATS.
//!
//! Core NATS (the default): accepted means the NATS server has processed
//! the publish: after it, a request to a fresh inbox subject nobody listens
//! on is sent on the same connection, and the server's "no responders"
//! answer (or any answer) proves it read everything before it, since a
//! server handles a connection's messages in order. Core NATS keeps
//! nothing: a subscriber not connected at that moment misses the event.
//!
//! With `jetstream: true` the event is published through JetStream and
//! accepted only when the stream bound to the subject acknowledges it
//! (stored): with no such stream, nothing is accepted and events wait in
//! the outbox until one exists. The event's id is its `Nats-Msg-Id`, so
//! the stream stores a resend (after a lost acknowledgement) once.
//!
//! `credentials.file` is a NATS credentials file; else `username` and
//! `password`, else `token`. `tlsConfig` adds a CA and a client certificate
//! (and requires TLS). The connection is made on first use and remade
//! after a failure; `timeout` bounds the connect and each send.

use std::time::Duration;

use async_nats::RequestErrorKind;
use tokio::sync::Mutex;
use zot_config::SinkConfig;
use zot_meta::OutboxEvent;

use crate::SinkError;
use crate::cloudevent;

pub(crate) struct NatsSink {
    cfg: SinkConfig,
    subject: String,
    client: Mutex<Option<async_nats::Client>>,
}

impl NatsSink {
    pub(crate) fn new(cfg: &SinkConfig) -> Result<NatsSink, SinkError> {
        let subject = cfg
            .channel
            .clone()
            .ok_or_else(|| SinkError::Setup(format!("{}: no channel", cfg.address)))?;
        Ok(NatsSink {
            cfg: cfg.clone(),
            subject,
            client: Mutex::new(None),
        })
    }

    async fn connect(&self) -> Result<async_nats::Client, SinkError> {
        let c = &self.cfg;
        let mut o = async_nats::ConnectOptions::new()
            .connection_timeout(c.timeout)
            .request_timeout(Some(c.timeout))
            .name("zot events");
        if let Some(file) = &c.credentials.file {
            o = o
                .credentials_file(file)
                .await
                .map_err(|e| SinkError::Setup(format!("credentials.file: {e}")))?;
        } else if let Some(user) = &c.credentials.username {
            o = o.user_and_password(
                user.clone(),
                c.credentials.password.clone().unwrap_or_default(),
            );
        } else if let Some(token) = &c.credentials.token {
            o = o.token(token.clone());
        }
        if c.tls.ca_cert_file.is_some() || c.tls.cert_file.is_some() {
            // async-nats asks rustls for the process's provider, which is
            // ambiguous with two compiled in (ring, and aws-lc-rs by
            // reqwest): name one, as the LDAP client does.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        if let Some(ca) = &c.tls.ca_cert_file {
            o = o.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let (Some(cert), Some(key)) = (&c.tls.cert_file, &c.tls.key_file) {
            o = o
                .add_client_certificate(cert.clone(), key.clone())
                .require_tls(true);
        }
        o.connect(c.address.as_str())
            .await
            .map_err(|e| SinkError::Send(format!("connecting: {e}")))
    }

    pub(crate) async fn send(&self, event: &OutboxEvent) -> Result<(), SinkError> {
        let mut slot = self.client.lock().await;
        let client = match slot.as_ref() {
            Some(c) => c.clone(),
            None => {
                let c = self.connect().await?;
                *slot = Some(c.clone());
                c
            }
        };
        drop(slot);
        let sent = self.publish(&client, event).await;
        if sent.is_err() {
            // Remade on the next attempt: a client stuck reconnecting to
            // a server that moved would never recover otherwise.
            *self.client.lock().await = None;
        }
        sent
    }

    async fn publish(
        &self,
        client: &async_nats::Client,
        event: &OutboxEvent,
    ) -> Result<(), SinkError> {
        let payload = cloudevent::structured(event, self.cfg.channel.as_deref());
        if self.cfg.jetstream {
            let js = async_nats::jetstream::new(client.clone());
            // The stream drops a resend of the same event (its duplicate
            // window, 2 minutes by default) by this id.
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", event.id.as_str());
            let stored = async {
                js.publish_with_headers(self.subject.clone(), headers, payload.into())
                    .await
                    .map_err(|e| e.to_string())?
                    .await
                    .map_err(|e| e.to_string())
            };
            return match tokio::time::timeout(self.cfg.timeout, stored).await {
                Ok(Ok(_ack)) => Ok(()),
                Ok(Err(e)) => Err(SinkError::Send(format!("JetStream publish: {e}"))),
                Err(_) => Err(SinkError::Send("JetStream publish: timed out".into())),
            };
        }
        client
            .publish(self.subject.clone(), payload.into())
            .await
            .map_err(|e| SinkError::Send(format!("publishing: {e}")))?;
        let probe = client.request(client.new_inbox(), bytes::Bytes::new());
        match tokio::time::timeout(self.cfg.timeout + Duration::from_millis(100), probe).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) if e.kind() == RequestErrorKind::NoResponders => Ok(()),
            Ok(Err(e)) => Err(SinkError::Send(format!("confirming the publish: {e}"))),
            Err(_) => Err(SinkError::Send("confirming the publish: timed out".into())),
        }
    }
}
