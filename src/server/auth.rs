//! Authentication: Huawei AK/SK request signing (`SDK-HMAC-SHA256`, see
//! [`crate::signing`]) or an `X-Auth-Token` from the configuration.

use std::time::{Duration, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

use super::{AppState, error_response};
use crate::signing::{self, Authorization, SignError};

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

/// Reads the body (up to the configured limit), checks the credentials,
/// and passes the request on with its body restored.
pub async fn authenticate(
    State(app): State<std::sync::Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let limit = app.config.body_limit_bytes;
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            crate::dsc::INVALID_PARAMETER,
            &format!("Invalid parameter: the request body exceeds the limit of {limit} bytes"),
        );
    };
    if let Err(reason) = check(&app, &parts, &bytes) {
        return unauthorized(&reason);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn check(app: &AppState, parts: &axum::http::request::Parts, body: &Bytes) -> Result<(), String> {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .map(|v| std::str::from_utf8(v.as_bytes()).map_err(|_| format!("{name} is not UTF-8")))
            .transpose()
    };
    if let Some(token) = header("x-auth-token")? {
        return if app
            .secrets
            .tokens
            .iter()
            .any(|t| constant_time_eq(t.as_bytes(), token.as_bytes()))
        {
            Ok(())
        } else {
            Err("unknown X-Auth-Token".to_owned())
        };
    }
    let authorization = Authorization::parse(
        header("authorization")?.ok_or_else(|| SignError::Missing.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let Some(sk) = app.secrets.credentials.get(&authorization.access) else {
        return Err(format!("unknown access key `{}`", authorization.access));
    };
    let date = header("x-sdk-date")?.ok_or("missing X-Sdk-Date header")?;
    let signed_at = crate::timefmt::parse_sdk_date(date.trim())
        .ok_or_else(|| SignError::BadDate.to_string())?;
    let skew = Duration::from_secs(app.config.max_clock_skew_secs);
    let now = SystemTime::now();
    let off = now
        .duration_since(signed_at)
        .unwrap_or_else(|e| e.duration());
    if off > skew {
        return Err(format!(
            "X-Sdk-Date is {} s away from the server's clock (at most {} s allowed)",
            off.as_secs(),
            skew.as_secs()
        ));
    }
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
    signing::verify(&request, &authorization, sk).map_err(|e| e.to_string())
}
