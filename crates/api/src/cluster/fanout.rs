//! The catalog and GraphQL search of the whole cluster: the receiving
//! member asks every other member (with [`HOP_HEADER`], so they answer with
//! their own part only) and merges. zot answers these from the receiving
//! member alone.
//!
//! Invariants:
//! - Catalog: each member is asked for at most `n + 1` names after `last`
//!   (the caller's credentials forwarded, so each member filters by its own
//!   access control); the union is sorted, deduplicated (members sharing a
//!   storage list the same names) and paginated after the merge, so pages
//!   and `Link`s are the same whichever member answers.
//! - GraphQL: the same query goes to every member (its page widened, see
//!   [`paging`]); in `data`, lists are concatenated in the order of
//!   `members` (so every member gives the same answer) without duplicates,
//!   then cut to the page, and each
//!   `Page`'s counts are summed less the duplicates dropped; `errors` are
//!   concatenated.
//! - A member that is down, slow (past [`FANOUT_TIMEOUT`]) or answers an
//!   error makes the answer partial, never failed: it is logged, named in
//!   [`PARTIAL_HEADER`], and for GraphQL also in an `errors` entry.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::join_all;
use serde_json::Value;

use super::paging::{self, Page};
use super::{Cluster, HOP_HEADER, Member, PARTIAL_HEADER};
use crate::endpoint::Endpoint;
use crate::errors::{ApiError, ApiResult, ErrorCode};
use crate::security::Caller;
use crate::{SharedState, http_util, manifests, zot_ext};

/// How long a member may take to answer its part.
pub const FANOUT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest GraphQL request or member answer read.
const MAX_GRAPHQL_BYTES: usize = 64 << 20;

/// The credentials of the caller, forwarded to every member.
fn credentials(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in [header::AUTHORIZATION, header::COOKIE] {
        for value in headers.get_all(&name) {
            out.append(name.clone(), value.clone());
        }
    }
    out.insert(HOP_HEADER, HeaderValue::from_static("1"));
    out
}

/// Why a member's part is missing, logged.
fn missing(member: &Member, what: &str, why: impl std::fmt::Display) -> String {
    tracing::warn!(member = %member.name, error = %why, "{what}: cluster member left out");
    member.name.clone()
}

/// `GET /v2/_catalog` across the cluster.
pub(crate) async fn catalog(
    state: &SharedState,
    cluster: &Cluster,
    req: Request,
    caller: &Caller,
) -> ApiResult {
    let (n, last) = http_util::pagination(&req)?;
    let want = n.saturating_add(1);
    let visible = |repo: &str| caller.may_read(&state.security, repo);
    let mut names: BTreeSet<String> =
        manifests::catalog_names(&state.stores, last.clone(), want, &visible)?
            .into_iter()
            .collect();
    let headers = credentials(req.headers());
    let peers: Vec<&Member> = cluster.peers().collect();
    let parts = join_all(
        peers
            .iter()
            .map(|m| peer_catalog(cluster, m, &headers, want, last.as_deref())),
    )
    .await;
    let mut partial = Vec::new();
    for (member, part) in peers.iter().zip(parts) {
        match part {
            Ok(list) => names.extend(list),
            Err(why) => partial.push(missing(member, "catalog", why)),
        }
    }
    let repos: Vec<String> = names
        .into_iter()
        .filter(|r| last.as_ref().is_none_or(|l| r > l))
        .take(want)
        .collect();
    let extra = (!partial.is_empty()).then(|| (PARTIAL_HEADER, partial.join(", ")));
    manifests::catalog_page(repos, n, extra)
}

/// Up to `want` names of `member`'s own catalog after `last`.
async fn peer_catalog(
    cluster: &Cluster,
    member: &Member,
    headers: &HeaderMap,
    want: usize,
    last: Option<&str>,
) -> Result<Vec<String>, String> {
    let query = {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if want != usize::MAX {
            query.append_pair("n", &want.to_string());
        }
        if let Some(last) = last {
            query.append_pair("last", last);
        }
        query.finish()
    };
    let url = format!("{}/v2/_catalog?{query}", member.base);
    let answer = cluster
        .client()
        .get(&url)
        .headers(headers.clone())
        .timeout(FANOUT_TIMEOUT)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = answer.status();
    if !status.is_success() {
        return Err(format!("answered {status}"));
    }
    let body = answer.bytes().await.map_err(|e| e.to_string())?;
    let list: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    let names = list["repositories"]
        .as_array()
        .ok_or("no repositories in the answer")?
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    Ok(names)
}

/// `GET`/`POST /v2/_zot/ext/search` across the cluster.
pub(crate) async fn search(
    state: &SharedState,
    cluster: &Cluster,
    req: Request,
    caller: &Caller,
) -> ApiResult {
    let (mut parts, body) = req.into_parts();
    let query = axum::body::to_bytes(body, MAX_GRAPHQL_BYTES)
        .await
        .map_err(|_| ApiError::msg(ErrorCode::SizeInvalid, "GraphQL request too large"))?;
    // Every member is asked for everything up to the page's end; the merge
    // is cut to the page (see `paging`).
    let (query, page) = match widen_request(&mut parts.uri, &query) {
        Some((body, page)) => (body, Some(page)),
        None => (query, None),
    };
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(query.len()));
    let (method, uri) = (parts.method.clone(), parts.uri.clone());
    let mut headers = credentials(&parts.headers);
    if let Some(ct) = parts.headers.get(header::CONTENT_TYPE) {
        headers.insert(header::CONTENT_TYPE, ct.clone());
    }
    let local = Request::from_parts(parts, Body::from(query.clone()));
    let local = zot_ext::route(state, Endpoint::Search, local, caller).await?;
    if local.status() != StatusCode::OK {
        return Ok(local);
    }
    let (mut local_parts, local_body) = local.into_parts();
    let local_body = axum::body::to_bytes(local_body, MAX_GRAPHQL_BYTES)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "reading this member's search answer");
            ApiError::new(ErrorCode::Unknown)
        })?;
    let Ok(local_answer) = serde_json::from_slice::<Value>(&local_body) else {
        return Ok(Response::from_parts(local_parts, Body::from(local_body)));
    };
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let peers: Vec<&Member> = cluster.peers().collect();
    let mut answers = join_all(
        peers
            .iter()
            .map(|m| peer_search(cluster, m, &method, path, &headers, query.clone())),
    )
    .await;
    // In the order of `members`, so every member merges alike.
    answers.insert(cluster.local_index(), Ok(local_answer));
    let mut merged: Option<Value> = None;
    let mut partial = Vec::new();
    for (member, answer) in cluster.members().iter().zip(answers) {
        match (answer, &mut merged) {
            (Ok(part), Some(merged)) => merge_graphql(merged, part),
            (Ok(part), None) => merged = Some(part),
            (Err(why), _) => partial.push((missing(member, "search", &why), why)),
        }
    }
    let mut merged = merged.unwrap_or(Value::Null);
    for (name, why) in &partial {
        push_error(
            &mut merged,
            serde_json::json!({
                "message": format!("cluster member {name} did not answer ({why}): results are partial"),
                "extensions": { "code": "CLUSTER_PARTIAL", "member": name },
            }),
        );
    }
    if let Some(page) = page {
        paging::cut(&mut merged, page);
    }
    let partial: Vec<String> = partial.into_iter().map(|(name, _)| name).collect();
    local_parts.headers.remove(header::CONTENT_LENGTH);
    if !partial.is_empty()
        && let Ok(value) = HeaderValue::try_from(partial.join(", "))
    {
        local_parts.headers.insert(PARTIAL_HEADER, value);
    }
    Ok(Response::from_parts(local_parts, Body::from(merged.to_string())).into_response())
}

/// Widens the page of a GraphQL request (the `query` of a JSON body, or
/// of the URL): its new body (`uri` is updated in place) and the page.
fn widen_request(uri: &mut Uri, body: &bytes::Bytes) -> Option<(bytes::Bytes, Page)> {
    if let Ok(Value::Object(mut request)) = serde_json::from_slice::<Value>(body) {
        let (query, page) = paging::widen(request.get("query")?.as_str()?)?;
        request.insert("query".into(), Value::String(query));
        let body = serde_json::to_vec(&request).ok()?;
        return Some((body.into(), page));
    }
    let mut page = None;
    let pairs: Vec<(String, String)> = form_urlencoded::parse(uri.query()?.as_bytes())
        .map(|(k, v)| {
            if k == "query"
                && page.is_none()
                && let Some((wide, p)) = paging::widen(&v)
            {
                page = Some(p);
                return (k.into_owned(), wide);
            }
            (k.into_owned(), v.into_owned())
        })
        .collect();
    let page = page?;
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    *uri = format!("{}?{query}", uri.path()).parse().ok()?;
    Some((body.clone(), page))
}

async fn peer_search(
    cluster: &Cluster,
    member: &Member,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    query: bytes::Bytes,
) -> Result<Value, String> {
    let mut request = cluster
        .client()
        .request(method.clone(), format!("{}{path}", member.base))
        .headers(headers.clone())
        .timeout(FANOUT_TIMEOUT);
    if !query.is_empty() {
        request = request.body(query);
    }
    let answer = request.send().await.map_err(|e| e.to_string())?;
    let status = answer.status();
    if !status.is_success() {
        return Err(format!("answered {status}"));
    }
    let body = answer.bytes().await.map_err(|e| e.to_string())?;
    serde_json::from_slice(&body).map_err(|e| e.to_string())
}

fn push_error(answer: &mut Value, error: Value) {
    let Some(object) = answer.as_object_mut() else {
        return;
    };
    match object.get_mut("errors").and_then(Value::as_array_mut) {
        Some(errors) => errors.push(error),
        None => {
            object.insert("errors".into(), Value::Array(vec![error]));
        }
    }
}

/// Merges a member's GraphQL answer into `into` (see the module invariants).
pub(crate) fn merge_graphql(into: &mut Value, part: Value) {
    let Value::Object(part) = part else {
        return;
    };
    for (key, value) in part {
        match key.as_str() {
            "errors" => {
                if let Value::Array(errors) = value {
                    for e in errors {
                        push_error(into, e);
                    }
                }
            }
            "data" => match into.get_mut("data") {
                Some(data) if !data.is_null() => {
                    merge_result(data, value);
                }
                _ => {
                    if let Some(object) = into.as_object_mut() {
                        object.insert(key, value);
                    }
                }
            },
            _ => {}
        }
    }
}

/// Merges one result object or list; returns how many duplicates it dropped.
fn merge_result(into: &mut Value, part: Value) -> u64 {
    match (into, part) {
        (Value::Array(items), Value::Array(more)) => {
            let mut dropped = 0;
            for item in more {
                if items.contains(&item) {
                    dropped += 1;
                } else {
                    items.push(item);
                }
            }
            dropped
        }
        (Value::Object(fields), Value::Object(more)) => {
            let mut dropped = 0;
            let mut pages = Vec::new();
            for (key, value) in more {
                if key == "Page" {
                    pages.push(value);
                    continue;
                }
                match fields.get_mut(&key) {
                    Some(existing) if !existing.is_null() => {
                        dropped += merge_result(existing, value)
                    }
                    _ => {
                        fields.insert(key, value);
                    }
                }
            }
            for page in pages {
                match fields.get_mut("Page") {
                    Some(existing) if existing.is_object() => add_page(existing, &page, dropped),
                    _ => {
                        fields.insert("Page".into(), page);
                    }
                }
            }
            dropped
        }
        _ => 0,
    }
}

/// Adds a member's `Page` counts to `into`, less `dropped` duplicates.
fn add_page(into: &mut Value, page: &Value, dropped: u64) {
    for key in ["TotalCount", "ItemCount"] {
        if let (Some(a), Some(b)) = (into[key].as_u64(), page[key].as_u64()) {
            into[key] = Value::from((a + b).saturating_sub(dropped));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn global_search_answers_merge() {
        let mut a = json!({"data": {"GlobalSearch": {
            "Page": {"TotalCount": 2, "ItemCount": 2},
            "Repos": [{"Name": "a"}, {"Name": "shared"}], "Images": [], "Layers": []}}});
        let b = json!({"data": {"GlobalSearch": {
            "Page": {"TotalCount": 3, "ItemCount": 2},
            "Repos": [{"Name": "b"}, {"Name": "shared"}], "Images": [{"RepoName": "b"}], "Layers": []}},
            "errors": [{"message": "x"}]});
        merge_graphql(&mut a, b);
        assert_eq!(
            a,
            json!({"data": {"GlobalSearch": {
                "Page": {"TotalCount": 4, "ItemCount": 3},
                "Repos": [{"Name": "a"}, {"Name": "shared"}, {"Name": "b"}],
                "Images": [{"RepoName": "b"}], "Layers": []}},
                "errors": [{"message": "x"}]})
        );
    }

    #[test]
    fn a_failed_local_data_takes_the_members() {
        let mut a = json!({"data": null, "errors": [{"message": "local"}]});
        merge_graphql(&mut a, json!({"data": {"ImageList": {"Results": [1]}}}));
        assert_eq!(a["data"], json!({"ImageList": {"Results": [1]}}));
        assert_eq!(a["errors"], json!([{"message": "local"}]));
    }

    #[test]
    fn credentials_only_and_the_hop() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic eA=="),
        );
        h.insert(header::RANGE, HeaderValue::from_static("bytes=0-1"));
        let out = credentials(&h);
        assert_eq!(out.len(), 2);
        assert_eq!(out[header::AUTHORIZATION], "Basic eA==");
        assert_eq!(out[HOP_HEADER], "1");
    }
}
