//! Huawei Cloud's AK/SK request signing, `SDK-HMAC-SHA256`, as the official
//! SDKs compute it: the canonical request, the string to sign, the
//! signature, and the server-side check (`dbwm serve` uses it; a client can
//! use [`sign`]).
//!
//! ```text
//! CanonicalRequest = METHOD \n CanonicalURI \n CanonicalQuery \n CanonicalHeaders \n SignedHeaders \n hex(SHA-256(body))
//! StringToSign     = "SDK-HMAC-SHA256" \n X-Sdk-Date \n hex(SHA-256(CanonicalRequest))
//! Signature        = hex(HMAC-SHA256(SK, StringToSign))
//! Authorization: SDK-HMAC-SHA256 Access=AK, SignedHeaders=h1;h2;…, Signature=…
//! ```
//!
//! The canonical URI percent-decodes the path, re-encodes each segment
//! (keeping `A–Z a–z 0–9 - _ . ~`) and ends it with `/`; the canonical query
//! sorts the decoded pairs by key then value and re-encodes them; each signed
//! header is `name:value` with the value trimmed; the body is hashed exactly
//! as received.
//!
//! ```
//! use dbwatermark::server::signing::{self, Request};
//! let body = br#"{"watermark_key": "k"}"#;
//! let headers = [
//!     ("Host", "127.0.0.1:8080"),
//!     ("Content-Type", "application/json"),
//!     ("X-Sdk-Date", "20260101T000000Z"),
//! ];
//! let request = Request { method: "POST", path: "/v1/p/sdg/database/watermark/extract", query: "", headers: &headers, body };
//! let authorization = signing::sign(&request, "AK", "SK");
//! assert!(authorization.starts_with("SDK-HMAC-SHA256 Access=AK, SignedHeaders=content-type;host;x-sdk-date, Signature="));
//! # let all = [headers[0], headers[1], headers[2], ("Authorization", authorization.as_str())];
//! # let signed = Request { headers: &all, ..request };
//! # let parsed = signing::Authorization::parse(&authorization).unwrap();
//! # assert!(signing::verify(&signed, &parsed, "SK").is_ok());
//! ```

pub use crate::timefmt::{parse_sdk_date, sdk_date};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::engine::key::hex;

/// The algorithm name in the `Authorization` header.
pub const ALGORITHM: &str = "SDK-HMAC-SHA256";

/// SHA-256 of an empty body, hex.
pub const EMPTY_BODY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Why a request's signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// No `Authorization` header.
    #[error("missing Authorization header")]
    Missing,
    /// The header is not `SDK-HMAC-SHA256 Access=…, SignedHeaders=…, Signature=…`.
    #[error("malformed Authorization header: {0}")]
    Malformed(&'static str),
    /// A header listed in `SignedHeaders` is absent from the request.
    #[error("signed header `{0}` is missing")]
    MissingHeader(String),
    /// `SignedHeaders` does not include a header that must be signed.
    #[error("SignedHeaders must include `{0}`")]
    UnsignedHeader(&'static str),
    /// `X-Sdk-Date` is not `YYYYMMDDThhmmssZ`.
    #[error("X-Sdk-Date is not YYYYMMDDThhmmssZ")]
    BadDate,
    /// The signature does not match.
    #[error("signature does not match")]
    Mismatch,
    /// `X-Sdk-Content-Sha256` claims a hash that is not the body's (a signed
    /// request replayed with another body), or is `UNSIGNED-PAYLOAD`, which
    /// this server does not accept: the body is always signed.
    #[error("X-Sdk-Content-Sha256 is not the SHA-256 of the body")]
    BodyHash,
}

/// A request as received (or about to be sent): the raw path and query of
/// the request line, the headers (any case; the first of a repeated name
/// counts), and the body bytes.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The method, e.g. `POST`.
    pub method: &'a str,
    /// The path as on the request line, without the query.
    pub path: &'a str,
    /// The query as on the request line, without `?`; empty if none.
    pub query: &'a str,
    /// Header names and values.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body, exactly as sent.
    pub body: &'a [u8],
}

impl Request<'_> {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// A parsed `Authorization` header.
#[derive(Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The access key (AK).
    pub access: String,
    /// The signed header names, lowercase, in order.
    pub signed_headers: Vec<String>,
    /// The hex signature.
    pub signature: String,
}

impl std::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorization")
            .field("access", &self.access)
            .field("signed_headers", &self.signed_headers)
            .finish_non_exhaustive()
    }
}

impl Authorization {
    /// Parses `SDK-HMAC-SHA256 Access=…, SignedHeaders=…, Signature=…`.
    ///
    /// # Errors
    ///
    /// [`SignError::Malformed`] naming what is wrong.
    pub fn parse(value: &str) -> Result<Self, SignError> {
        let (algorithm, rest) = value
            .trim()
            .split_once(' ')
            .ok_or(SignError::Malformed("no credentials after the algorithm"))?;
        if algorithm != ALGORITHM {
            return Err(SignError::Malformed("algorithm must be SDK-HMAC-SHA256"));
        }
        let (mut access, mut signed, mut signature) = (None, None, None);
        for item in rest.split(',') {
            let (k, v) = item
                .trim()
                .split_once('=')
                .ok_or(SignError::Malformed("an item is not Key=Value"))?;
            match k {
                "Access" => access = Some(v.to_owned()),
                "SignedHeaders" => {
                    signed = Some(v.split(';').map(str::to_ascii_lowercase).collect())
                }
                "Signature" => signature = Some(v.to_owned()),
                _ => {}
            }
        }
        let access: String = access.ok_or(SignError::Malformed("no Access"))?;
        let signed_headers: Vec<String> = signed.ok_or(SignError::Malformed("no SignedHeaders"))?;
        let signature = signature.ok_or(SignError::Malformed("no Signature"))?;
        if access.is_empty() || signature.is_empty() || signed_headers.iter().any(String::is_empty)
        {
            return Err(SignError::Malformed("an empty item"));
        }
        Ok(Self {
            access,
            signed_headers,
            signature,
        })
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

fn percent_encode(bytes: &[u8], out: &mut String) {
    for &b in bytes {
        if is_unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

fn percent_decode(text: &str) -> Vec<u8> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| char::from(c).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// The canonical URI of a raw path: decoded, split on `/`, each segment
/// re-encoded, joined, and ending in `/`.
pub fn canonical_uri(path: &str) -> String {
    let decoded = percent_decode(path);
    let mut out = String::with_capacity(decoded.len() + 1);
    for (i, segment) in decoded.split(|&b| b == b'/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        percent_encode(segment, &mut out);
    }
    if !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// The canonical query of a raw query string (without `?`): pairs decoded
/// (`+` stays a plus), sorted by key then value, re-encoded.
pub fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        percent_encode(k, &mut out);
        out.push('=');
        percent_encode(v, &mut out);
    }
    out
}

/// The canonical request for `signed_headers` (lowercase names, in order).
///
/// # Errors
///
/// [`SignError::MissingHeader`] if a signed header is absent.
pub fn canonical_request(
    request: &Request<'_>,
    signed_headers: &[String],
) -> Result<String, SignError> {
    let mut out = String::new();
    out.push_str(&request.method.to_ascii_uppercase());
    out.push('\n');
    out.push_str(&canonical_uri(request.path));
    out.push('\n');
    out.push_str(&canonical_query(request.query));
    out.push('\n');
    for name in signed_headers {
        let value = request
            .header(name)
            .ok_or_else(|| SignError::MissingHeader(name.clone()))?;
        out.push_str(name);
        out.push(':');
        out.push_str(value.trim());
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_headers.join(";"));
    out.push('\n');
    let payload_hash = match request.header("x-sdk-content-sha256") {
        Some(literal) if !request.body.is_empty() => literal.to_owned(),
        _ if request.body.is_empty() => EMPTY_BODY_SHA256.to_owned(),
        _ => hex(&Sha256::digest(request.body)),
    };
    out.push_str(&payload_hash);
    Ok(out)
}

/// The string to sign for a canonical request signed at `sdk_date`.
pub fn string_to_sign(sdk_date: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{sdk_date}\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    )
}

fn mac(sk: &str, string_to_sign: &str) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(sk.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    mac
}

/// The hex signature of `string_to_sign` under `sk`.
pub fn signature(sk: &str, string_to_sign: &str) -> String {
    hex(&mac(sk, string_to_sign).finalize().into_bytes())
}

/// The `Authorization` header for `request` signed with `ak`/`sk`, signing
/// every header it has except those whose name contains `_` (as the SDK
/// does). The request must carry `X-Sdk-Date`.
///
/// # Panics
///
/// If `request` has no `X-Sdk-Date` header.
pub fn sign(request: &Request<'_>, ak: &str, sk: &str) -> String {
    let mut names: Vec<String> = request
        .headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .filter(|n| !n.contains('_') && n != "authorization")
        .collect();
    names.sort();
    names.dedup();
    let date = request
        .header("x-sdk-date")
        .expect("a request to sign carries X-Sdk-Date");
    let canonical = canonical_request(request, &names).expect("every name comes from the request");
    format!(
        "{ALGORITHM} Access={ak}, SignedHeaders={}, Signature={}",
        names.join(";"),
        signature(sk, &string_to_sign(date, &canonical))
    )
}

/// Checks `request`'s signature against `sk` (the caller has looked up the
/// SK of `authorization.access` and checks the date's skew). `host` and
/// `x-sdk-date` must be signed. The body is always covered: an
/// `X-Sdk-Content-Sha256` header must be the SHA-256 of the body received
/// (`UNSIGNED-PAYLOAD` is refused; the DSC calls never send it). The comparison takes the same time whatever
/// the signature.
///
/// # Errors
///
/// The [`SignError`] that says why the request is not accepted.
pub fn verify(
    request: &Request<'_>,
    authorization: &Authorization,
    sk: &str,
) -> Result<(), SignError> {
    for required in ["host", "x-sdk-date"] {
        if !authorization.signed_headers.iter().any(|h| h == required) {
            return Err(SignError::UnsignedHeader(required));
        }
    }
    let date = request
        .header("x-sdk-date")
        .ok_or_else(|| SignError::MissingHeader("x-sdk-date".to_owned()))?
        .trim();
    if crate::timefmt::parse_sdk_date(date).is_none() {
        return Err(SignError::BadDate);
    }
    // The SDK signs a claimed body hash literally; a claim must be the hash
    // of the body received, or a captured signature would cover any body.
    if let Some(claimed) = request.header("x-sdk-content-sha256")
        && !request.body.is_empty()
        && !claimed
            .trim()
            .eq_ignore_ascii_case(&hex(&Sha256::digest(request.body)))
    {
        return Err(SignError::BodyHash);
    }
    let canonical = canonical_request(request, &authorization.signed_headers)?;
    let received = decode_hex(&authorization.signature).ok_or(SignError::Mismatch)?;
    mac(sk, &string_to_sign(date, &canonical))
        .verify_slice(&received)
        .map_err(|_| SignError::Mismatch)
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 {
        return None;
    }
    (0..32)
        .map(|i| u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_queries_canonicalize_as_the_sdk_does() {
        assert_eq!(canonical_uri("/v1/p/x"), "/v1/p/x/");
        assert_eq!(canonical_uri("/v1/p/x/"), "/v1/p/x/");
        assert_eq!(canonical_uri("/a%20b/c%2Fd/%C3%BC"), "/a%20b/c/d/%C3%BC/");
        assert_eq!(canonical_query(""), "");
        assert_eq!(canonical_query("b=2&a=1&a=0&k"), "a=0&a=1&b=2&k=");
        assert_eq!(canonical_query("x=a+b"), "x=a%2Bb");
        // A stray `%` is kept as a byte.
        assert_eq!(canonical_query("x=100%"), "x=100%25");
    }

    #[test]
    fn authorization_headers_parse_or_say_why_not() {
        let a = Authorization::parse(
            "SDK-HMAC-SHA256 Access=AK1, SignedHeaders=Host;x-sdk-date, Signature=ab",
        )
        .unwrap();
        assert_eq!(a.access, "AK1");
        assert_eq!(a.signed_headers, ["host", "x-sdk-date"]);
        assert!(
            !format!("{a:?}").contains("ab\""),
            "Debug hides the signature"
        );
        for bad in [
            "",
            "SDK-HMAC-SHA256",
            "AWS4-HMAC-SHA256 Access=a, SignedHeaders=h, Signature=s",
            "SDK-HMAC-SHA256 Access=a, Signature=s",
            "SDK-HMAC-SHA256 Access=, SignedHeaders=h, Signature=s",
            "SDK-HMAC-SHA256 garbage",
        ] {
            assert!(Authorization::parse(bad).is_err(), "{bad}");
        }
    }
}
