//! GitHub's OAuth2 login (`http.auth.openid.providers.github`): who the
//! access token's user is, by GitHub's REST API.
//!
//! Invariants: the user is the primary *verified* e-mail address (an
//! unverified one could be anyone's); the groups are the user's
//! organisations (`login`) and teams as `org/team-slug`, sorted and
//! deduplicated; an API answer other than 2xx refuses the login.

use serde_json::Value;

use crate::openid::{LoggedIn, LoginError, OpenId};

/// GitHub's endpoints, unless `authurl`, `tokenurl`, `apiurl` say otherwise.
pub(crate) const AUTH: &str = "https://github.com/login/oauth/authorize";
pub(crate) const TOKEN: &str = "https://github.com/login/oauth/access_token";
pub(crate) const API: &str = "https://api.github.com";

/// GitHub's user: the primary verified e-mail; groups: organisations and
/// `org/team` slugs.
pub(crate) async fn identity(
    openid: &OpenId,
    api: &str,
    access: &str,
) -> Result<LoggedIn, LoginError> {
    let emails = openid
        .get_api(&format!("{api}/user/emails"), access)
        .await?;
    let user = emails
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| {
            e.get("primary").and_then(Value::as_bool) == Some(true)
                && e.get("verified").and_then(Value::as_bool) == Some(true)
        })
        .and_then(|e| e.get("email").and_then(Value::as_str))
        .filter(|e| !e.is_empty())
        .ok_or_else(|| LoginError::Refused("no primary verified e-mail".into()))?
        .to_owned();
    let mut groups = Vec::new();
    let orgs = openid.get_api(&format!("{api}/user/orgs"), access).await?;
    for org in orgs.as_array().into_iter().flatten() {
        if let Some(login) = org.get("login").and_then(Value::as_str) {
            groups.push(login.to_owned());
        }
    }
    let teams = openid.get_api(&format!("{api}/user/teams"), access).await?;
    for team in teams.as_array().into_iter().flatten() {
        let org = team
            .get("organization")
            .and_then(|o| o.get("login"))
            .and_then(Value::as_str);
        if let (Some(org), Some(slug)) = (org, team.get("slug").and_then(Value::as_str)) {
            groups.push(format!("{org}/{slug}"));
        }
    }
    groups.sort();
    groups.dedup();
    Ok(LoggedIn { user, groups })
}
