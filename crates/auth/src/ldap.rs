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
//! - `insecure: true` is plain `ldap://`; otherwise `startTLS` upgrades a
//!   `ldap://` connection, or `ldaps://` is used. `skipVerify` turns server
//!   certificate verification off.
//! - Each login is a fresh connection, bounded by [`TIMEOUT`]; any failure is
//!   logged (never with the password) and is a failed login.

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
        Ok(Ldap {
            config: config.clone(),
            bind_dn,
            bind_password,
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
        let settings = LdapConnSettings::new()
            .set_conn_timeout(TIMEOUT)
            .set_starttls(c.start_tls && !c.insecure)
            .set_no_tls_verify(c.skip_verify);
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
        Ok(Some(Identity {
            name: user.to_owned(),
            groups,
            method: Method::Ldap,
            grants: None,
        }))
    }
}
