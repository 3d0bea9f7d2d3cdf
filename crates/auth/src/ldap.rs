//! LDAP authentication (`http.auth.ldap`), as zot does it: bind as the
//! service account (`bindDN`/`bindPassword`, from `credentialsFile`), search
//! `baseDN` for exactly one entry whose `userAttribute` is the user name (and
//! that matches `userFilter`), bind as that entry with the given password,
//! and read the user's groups from `userGroupAttribute`.
//!
//! - The user name is escaped in the filter (RFC 4515), so `*` or `)` in a
//!   name cannot widen the search.
//! - An empty password is refused before any bind (it would be an
//!   "unauthenticated bind", which servers accept).
//! - The identity is the directory's own value of `userAttribute` (LDAP
//!   usually matches names without regard to case or extra spaces, so
//!   `ALICE` logs in as `alice`, and access rules naming `alice` apply).
//! - `insecure: true` is plain `ldap://`; otherwise `startTLS` upgrades a
//!   `ldap://` connection, or `ldaps://` is used. The server certificate
//!   must chain to `caCert` when it is set (that CA only, as in zot), else
//!   to the system's roots, and name the `address` (a host name, or an IP
//!   address in the certificate's subjectAltName). `skipVerify` turns
//!   server certificate verification off (for a test directory only).
//! - Each login is a fresh connection, bounded by [`TIMEOUT`]; any failure
//!   (refused connection, failed TLS handshake, silent server) is logged
//!   (never with the password) and is a failed login.

use std::sync::Arc;
use std::time::Duration;

use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry, ldap_escape};
use serde::Deserialize;
use zot_config::LdapConfig;

use crate::{Identity, Method, SetupError};

const TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Ldap {
    config: LdapConfig,
    bind_dn: String,
    bind_password: String,
    /// The TLS client configuration trusting `caCert`; `None`: the system's
    /// roots (or no verification with `skipVerify`), as `ldap3` sets up.
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// A rustls client configuration trusting only the CA certificates of `path`.
fn client_config(path: &std::path::Path) -> Result<Arc<rustls::ClientConfig>, SetupError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let fail = |why: String| SetupError(format!("http.auth.ldap.caCert {}: {why}", path.display()));
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| fail(e.to_string()))? {
        roots
            .add(cert.map_err(|e| fail(e.to_string()))?)
            .map_err(|e| fail(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(fail("no certificate".to_owned()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CredentialsFile {
    #[serde(rename = "bindDN", alias = "binddn")]
    bind_dn: String,
    #[serde(alias = "bindpassword")]
    bind_password: String,
}

impl Ldap {
    pub(crate) fn new(config: &LdapConfig) -> Result<Ldap, SetupError> {
        let (mut bind_dn, mut bind_password) = (
            config.bind_dn.clone().unwrap_or_default(),
            config.bind_password.clone().unwrap_or_default(),
        );
        if let Some(path) = &config.credentials_file {
            let fail = |why: String| {
                SetupError(format!(
                    "http.auth.ldap.credentialsFile {}: {why}",
                    path.display()
                ))
            };
            let text = std::fs::read(path).map_err(|e| fail(format!("cannot read: {e}")))?;
            let creds: CredentialsFile = serde_json::from_slice(&text)
                .map_err(|e| fail(format!("expected {{\"bindDN\", \"bindPassword\"}}: {e}")))?;
            crate::warn_if_shared(path, "the LDAP credentials file");
            bind_dn = creds.bind_dn;
            bind_password = creds.bind_password;
        }
        // With `skipVerify` (and no CA file), ldap3 builds its own rustls
        // configuration from the process-wide provider; with more than one
        // provider compiled in (the S3 client brings aws-lc-rs), rustls
        // cannot pick one itself, so ring (what we use everywhere) is made
        // the default. A default already installed is kept.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tls = match &config.ca_cert {
            Some(path) if !config.insecure && !config.skip_verify => Some(client_config(path)?),
            _ => None,
        };
        if config.insecure {
            tracing::warn!(
                address = %config.address,
                "http.auth.ldap.insecure: passwords go to the LDAP server unencrypted"
            );
        } else if config.skip_verify {
            tracing::warn!(
                address = %config.address,
                "http.auth.ldap.skipVerify: the LDAP server's certificate is not checked"
            );
        }
        Ok(Ldap {
            config: config.clone(),
            bind_dn,
            bind_password,
            tls,
        })
    }

    /// The user's identity if `password` is right; `None` otherwise.
    pub(crate) async fn authenticate(&self, user: &str, password: &str) -> Option<Identity> {
        if password.is_empty() {
            return None;
        }
        match tokio::time::timeout(TIMEOUT, self.login(user, password)).await {
            Ok(Ok(identity)) => identity,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, address = %self.config.address, "LDAP authentication failed");
                None
            }
            Err(_) => {
                tracing::warn!(address = %self.config.address, "LDAP server did not answer in time");
                None
            }
        }
    }

    async fn login(
        &self,
        user: &str,
        password: &str,
    ) -> Result<Option<Identity>, ldap3::LdapError> {
        let c = &self.config;
        let scheme = if c.insecure || c.start_tls {
            "ldap"
        } else {
            "ldaps"
        };
        let url = format!("{scheme}://{}:{}", c.address, c.port);
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(TIMEOUT)
            .set_starttls(c.start_tls && !c.insecure)
            .set_no_tls_verify(c.skip_verify);
        if let Some(tls) = &self.tls {
            settings = settings.set_config(tls.clone());
        }
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &url).await?;
        ldap3::drive!(conn);
        if !self.bind_dn.is_empty() {
            ldap.simple_bind(&self.bind_dn, &self.bind_password)
                .await?
                .success()?;
        }
        let mut filter = format!("({}={})", c.user_attribute, ldap_escape(user));
        if let Some(extra) = &c.user_filter {
            let extra = if extra.starts_with('(') {
                extra.clone()
            } else {
                format!("({extra})")
            };
            filter = format!("(&{filter}{extra})");
        }
        let scope = if c.subtree_search {
            Scope::Subtree
        } else {
            Scope::OneLevel
        };
        let mut attrs = vec![c.user_attribute.as_str()];
        if let Some(g) = &c.user_group_attribute {
            attrs.push(g.as_str());
        }
        let (entries, _) = ldap
            .search(&c.base_dn, scope, &filter, attrs)
            .await?
            .success()?;
        if entries.len() != 1 {
            if entries.len() > 1 {
                tracing::warn!(
                    matches = entries.len(),
                    "LDAP search found several users for one name"
                );
            }
            let _ = ldap.unbind().await;
            return Ok(None);
        }
        let Some(raw) = entries.into_iter().next() else {
            return Ok(None);
        };
        let entry = SearchEntry::construct(raw);
        let bound = ldap
            .simple_bind(&entry.dn, password)
            .await?
            .success()
            .is_ok();
        let _ = ldap.unbind().await;
        if !bound {
            return Ok(None);
        }
        let groups = c
            .user_group_attribute
            .as_ref()
            .and_then(|g| {
                entry
                    .attrs
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(g))
                    .map(|(_, v)| v.clone())
            })
            .unwrap_or_default();
        // The directory's spelling of the name the search matched.
        let name = entry
            .attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&c.user_attribute))
            .and_then(|(_, values)| {
                let wanted = user.trim();
                values
                    .iter()
                    .find(|v| *v == wanted)
                    .or_else(|| values.iter().find(|v| v.eq_ignore_ascii_case(wanted)))
                    .or_else(|| values.first())
            })
            .filter(|v| !v.is_empty())
            .cloned()
            .unwrap_or_else(|| user.to_owned());
        Ok(Some(Identity {
            name,
            groups,
            method: Method::Ldap,
            grants: None,
            key: None,
        }))
    }
}
