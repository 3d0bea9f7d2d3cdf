//! `http.auth.bearer.oidc`: issuers whose ID tokens are accepted as bearer
//! tokens (workload identity), in zot's key names.
//!
//! Invariants of what is returned: `issuer` is an `http://` or `https://`
//! URL without a trailing slash problem (kept exactly as written, since it
//! must equal the tokens' `iss`); `audiences` is non-empty; the claim
//! mappings are claim paths (`claims.sub`, `claims.a.b`): zot evaluates CEL
//! there, and an expression this build cannot evaluate is a problem, not a
//! silently different user. At most one of `certificateAuthority` (inline
//! PEM) and `certificateAuthorityFile` is set (the file is read by the
//! server). `skipIssuerVerification` is refused by name (not supported).

use serde_json::Value;

use crate::fields;
use crate::problem::Problem;
use crate::value::Section;

/// One accepted issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcIssuerConfig {
    pub issuer: String,
    pub audiences: Vec<String>,
    /// `claimMapping.username`: the claim path of the user (default
    /// `claims.sub`).
    pub username_claim: String,
    /// `claimMapping.groups`: the claim path of the groups, if any.
    pub groups_claim: Option<String>,
    /// CA certificates (PEM) the issuer's HTTPS certificate chains to, in
    /// addition to the system's.
    pub certificate_authority: Option<IssuerCa>,
}

/// Where an issuer's CA comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuerCa {
    /// `certificateAuthority`: PEM text.
    Pem(String),
    /// `certificateAuthorityFile`.
    File(std::path::PathBuf),
}

fn claim_path(
    section: &mut Section<'_>,
    name: &str,
    problems: &mut Vec<Problem>,
) -> Option<String> {
    let value = fields::string(section, name, problems)?;
    let path = value.trim().strip_prefix("claims.").unwrap_or(value.trim());
    let valid = !path.is_empty()
        && path.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b':')
        });
    if valid {
        Some(format!("claims.{path}"))
    } else {
        problems.push(Problem::new(
            section.child(name),
            "only claim paths such as claims.sub are supported by this build",
        ));
        None
    }
}

pub(crate) fn parse(
    path: String,
    value: &Value,
    problems: &mut Vec<Problem>,
) -> Vec<OidcIssuerConfig> {
    let Value::Array(items) = value else {
        problems.push(Problem::new(path, "expected a list of issuers"));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(mut section) = Section::new(format!("{path}[{i}]"), item, problems) else {
            continue;
        };
        let issuer = fields::string(&mut section, "issuer", problems);
        let issuer = match issuer {
            Some(s) if s.starts_with("https://") || s.starts_with("http://") => Some(s),
            Some(_) => {
                problems.push(Problem::new(
                    section.child("issuer"),
                    "expected an http(s) URL",
                ));
                None
            }
            None => {
                if !section.has("issuer") {
                    problems.push(Problem::new(section.child("issuer"), "required"));
                }
                None
            }
        };
        let audiences: Vec<String> = fields::string_list(&mut section, "audiences", problems)
            .unwrap_or_default()
            .into_iter()
            .map(|(_, a)| a)
            .filter(|a| !a.is_empty())
            .collect();
        if audiences.is_empty() {
            problems.push(Problem::new(
                section.child("audiences"),
                "at least one audience is required",
            ));
        }
        let mut username_claim = Some("claims.sub".to_owned());
        let mut groups_claim = None;
        if let Some(v) = section.get("claimMapping")
            && let Some(mut mapping) = Section::new(section.child("claimMapping"), v, problems)
        {
            if mapping.has("username") {
                username_claim = claim_path(&mut mapping, "username", problems);
            }
            groups_claim = claim_path(&mut mapping, "groups", problems);
            mapping.finish(problems);
        }
        let inline = fields::string(&mut section, "certificateAuthority", problems)
            .filter(|s| !s.is_empty());
        let file = fields::string(&mut section, "certificateAuthorityFile", problems)
            .filter(|s| !s.is_empty());
        let certificate_authority = match (inline, file) {
            (Some(_), Some(_)) => {
                problems.push(Problem::new(
                    section.child("certificateAuthorityFile"),
                    "only one of certificateAuthority and certificateAuthorityFile may be set",
                ));
                None
            }
            (Some(pem), None) => Some(IssuerCa::Pem(pem)),
            (None, Some(f)) => Some(IssuerCa::File(f.into())),
            (None, None) => None,
        };
        section.unsupported(&["skipIssuerVerification"], problems);
        section.finish(problems);
        if let (Some(issuer), Some(username_claim), false) =
            (issuer, username_claim, audiences.is_empty())
        {
            out.push(OidcIssuerConfig {
                issuer,
                audiences,
                username_claim,
                groups_claim,
                certificate_authority,
            });
        }
    }
    out
}
