//! Authentication: Huawei AK/SK request signing (`SDK-HMAC-SHA256`, see
//! [`crate::server::signing`]) or an `X-Auth-Token` from the configuration.

use std::time::{Duration, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

use super::{AppState, error_response};
use crate::server::signing::{self, Authorization, SignError};

/// Error code of an authentication failure (as Huawei's API gateway).
pub const AUTH_ERROR_CODE: &str = "APIGW.0301";

fn unauthorized(reason: &str) -> Response {
    error_response(
        StatusCode::UNAUTHORIZED,
        AUTH_ERROR_CODE,
        &format!("Incorrect IAM authentication information: {reason}"),
    )
}

/// Compares two byte strings in time that depends only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks the credentials (the headers first, so that a caller without
/// them cannot make the server read a large body), reads the body up to
/// the configured limit, verifies the signature over it, and passes the
/// request on with its body restored.
pub async fn authenticate(
    State(app): State<std::sync::Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let signed = match credentials(&app, &parts) {
        Ok(s) => s,
        Err(reason) => return unauthorized(&reason),
    };
    let limit = app.config.body_limit_bytes;
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            crate::dsc::INVALID_PARAMETER,
            &format!("Invalid parameter: the request body exceeds the limit of {limit} bytes"),
        );
    };
    if let Some((authorization, sk)) = signed
        && let Err(e) = verify(&parts, &bytes, &authorization, &sk)
    {
        return unauthorized(&e.to_string());
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn header<'a>(
    parts: &'a axum::http::request::Parts,
    name: &str,
) -> Result<Option<&'a str>, String> {
    parts
        .headers
        .get(name)
        .map(|v| std::str::from_utf8(v.as_bytes()).map_err(|_| format!("{name} is not UTF-8")))
        .transpose()
}

/// A valid token (`None`), or the signature to verify with its SK; the
/// access key and the date's skew are checked here.
fn credentials(
    app: &AppState,
    parts: &axum::http::request::Parts,
) -> Result<Option<(Authorization, String)>, String> {
    if let Some(token) = header(parts, "x-auth-token")? {
        return if app
            .secrets
            .tokens
            .iter()
            .any(|t| constant_time_eq(t.as_bytes(), token.as_bytes()))
        {
            Ok(None)
        } else {
            Err("unknown X-Auth-Token".to_owned())
        };
    }
    let authorization = Authorization::parse(
        header(parts, "authorization")?.ok_or_else(|| SignError::Missing.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let Some(sk) = app.secrets.credentials.get(&authorization.access) else {
        return Err(format!("unknown access key `{}`", authorization.access));
    };
    let date = header(parts, "x-sdk-date")?.ok_or("missing X-Sdk-Date header")?;
    let signed_at = crate::timefmt::parse_sdk_date(date.trim())
        .ok_or_else(|| SignError::BadDate.to_string())?;
    let skew = Duration::from_secs(app.config.max_clock_skew_secs);
    let off = SystemTime::now()
        .duration_since(signed_at)
        .unwrap_or_else(|e| e.duration());
    if off > skew {
        return Err(format!(
            "X-Sdk-Date is {} s away from the server's clock (at most {} s allowed)",
            off.as_secs(),
            skew.as_secs()
        ));
    }
    Ok(Some((authorization, sk.clone())))
}

fn verify(
    parts: &axum::http::request::Parts,
    body: &Bytes,
    authorization: &Authorization,
    sk: &str,
) -> Result<(), SignError> {
    let mut headers: Vec<(&str, &str)> = Vec::with_capacity(parts.headers.len());
    for (name, value) in &parts.headers {
        if let Ok(v) = std::str::from_utf8(value.as_bytes()) {
            headers.push((name.as_str(), v));
        }
    }
    let request = signing::Request {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        body,
    };
    signing::verify(&request, authorization, sk)
}
