//! Huawei SDK-HMAC-SHA256: the known-answer vectors of `SIGNING.md`
//! (computed with the official SDK's `Signer`), in `tests/data/signing/`.

use dbwatermark::server::signing::{self, Authorization, Request, SignError};

struct Vector {
    name: String,
    ak: String,
    sk: String,
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    authorization: String,
    canonical_request: String,
    string_to_sign: String,
    signature: String,
}

fn vectors() -> Vec<Vector> {
    let dir = format!("{}/tests/data/signing", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(format!("{dir}/vectors.json")).unwrap();
    let all: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let s = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap().to_owned();
    all.iter()
        .map(|v| Vector {
            name: s(v, "name"),
            ak: s(v, "ak"),
            sk: s(v, "sk"),
            method: s(v, "method"),
            path: s(v, "path"),
            query: s(v, "query"),
            headers: v["headers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| {
                    (
                        h[0].as_str().unwrap().to_owned(),
                        h[1].as_str().unwrap().to_owned(),
                    )
                })
                .collect(),
            body: v["body_file"]
                .as_str()
                .map(|f| std::fs::read(format!("{dir}/{f}")).unwrap())
                .unwrap_or_default(),
            authorization: s(v, "authorization"),
            canonical_request: s(v, "canonical_request"),
            string_to_sign: s(v, "string_to_sign"),
            signature: s(v, "signature"),
        })
        .collect()
}

fn with_request<T>(v: &Vector, extra: &[(&str, &str)], f: impl FnOnce(&Request<'_>) -> T) -> T {
    let mut headers: Vec<(&str, &str)> = v
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    headers.extend_from_slice(extra);
    f(&Request {
        method: &v.method,
        path: &v.path,
        query: &v.query,
        headers: &headers,
        body: &v.body,
    })
}

#[test]
fn both_sdk_vectors_are_reproduced_exactly() {
    for v in vectors() {
        let auth = Authorization::parse(&v.authorization).unwrap();
        let canonical = with_request(&v, &[], |r| {
            signing::canonical_request(r, &auth.signed_headers)
        })
        .unwrap();
        assert_eq!(canonical, v.canonical_request, "{}", v.name);
        let sts = signing::string_to_sign("20260101T000000Z", &canonical);
        assert_eq!(sts, v.string_to_sign, "{}", v.name);
        assert_eq!(signing::signature(&v.sk, &sts), v.signature, "{}", v.name);
        with_request(&v, &[("Authorization", &v.authorization)], |r| {
            assert_eq!(signing::verify(r, &auth, &v.sk), Ok(()), "{}", v.name)
        });
    }
}

#[test]
fn signing_as_the_sdk_does_gives_the_vector_headers() {
    // The SDK signs the headers present when it signs: not Accept, Accept-Encoding,
    // Connection or Content-Length, which `requests` adds later.
    for v in vectors() {
        let signed_at_signing_time = [
            "host",
            "user-agent",
            "content-type",
            "x-sdk-date",
            "x-project-id",
        ];
        let mut headers: Vec<(&str, &str)> = v
            .headers
            .iter()
            .filter(|(n, _)| signed_at_signing_time.contains(&n.to_ascii_lowercase().as_str()))
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        headers.push(("Some_Underscored", "not signed"));
        let request = Request {
            method: &v.method,
            path: &v.path,
            query: &v.query,
            headers: &headers,
            body: &v.body,
        };
        assert_eq!(
            signing::sign(&request, &v.ak, &v.sk),
            v.authorization,
            "{}",
            v.name
        );
    }
}

#[test]
fn a_tampered_body_path_query_or_header_or_a_wrong_sk_fails() {
    let v = &vectors()[0];
    let auth = Authorization::parse(&v.authorization).unwrap();
    let check =
        |method: &str, path: &str, query: &str, headers: &[(&str, &str)], body: &[u8], sk: &str| {
            signing::verify(
                &Request {
                    method,
                    path,
                    query,
                    headers,
                    body,
                },
                &auth,
                sk,
            )
        };
    let headers: Vec<(&str, &str)> = v
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let ok = check(&v.method, &v.path, &v.query, &headers, &v.body, &v.sk);
    assert_eq!(ok, Ok(()));
    let mut body = v.body.clone();
    body[30] ^= 1;
    assert_eq!(
        check(&v.method, &v.path, &v.query, &headers, &body, &v.sk),
        Err(SignError::Mismatch)
    );
    assert_eq!(
        check(
            &v.method,
            "/v1/other/sdg/database/watermark/embed",
            &v.query,
            &headers,
            &v.body,
            &v.sk
        ),
        Err(SignError::Mismatch)
    );
    assert_eq!(
        check(&v.method, &v.path, "a=1", &headers, &v.body, &v.sk),
        Err(SignError::Mismatch)
    );
    assert_eq!(
        check("PUT", &v.path, &v.query, &headers, &v.body, &v.sk),
        Err(SignError::Mismatch)
    );
    assert_eq!(
        check(&v.method, &v.path, &v.query, &headers, &v.body, "wrong"),
        Err(SignError::Mismatch)
    );
    let mut other_host = headers.clone();
    other_host[0] = ("Host", "127.0.0.1:9090");
    assert_eq!(
        check(&v.method, &v.path, &v.query, &other_host, &v.body, &v.sk),
        Err(SignError::Mismatch)
    );
    let no_date: Vec<(&str, &str)> = headers
        .iter()
        .copied()
        .filter(|(n, _)| *n != "X-Sdk-Date")
        .collect();
    assert!(check(&v.method, &v.path, &v.query, &no_date, &v.body, &v.sk).is_err());
    // Host and X-Sdk-Date must be among the signed headers.
    let unsigned_host = Authorization::parse(&v.authorization.replace("host;", "")).unwrap();
    let r = Request {
        method: &v.method,
        path: &v.path,
        query: &v.query,
        headers: &headers,
        body: &v.body,
    };
    assert_eq!(
        signing::verify(&r, &unsigned_host, &v.sk),
        Err(SignError::UnsignedHeader("host"))
    );
}

mod untrusted_input {
    use dbwatermark::server::signing::{self, Authorization, Request};
    use proptest::prelude::*;
    use proptest::test_runner::{Config as PropConfig, RngSeed};

    proptest! {
        #![proptest_config(PropConfig {
            cases: 1024,
            rng_seed: RngSeed::Fixed(0x516),
            failure_persistence: None,
            ..PropConfig::default()
        })]

        /// Whatever a client sends, parsing and verifying answer without
        /// panicking, and a random signature never verifies.
        #[test]
        fn any_headers_path_or_query_get_an_answer_never_a_panic(
            auth in "(SDK-HMAC-SHA256 )?(Access=[a-z%]{0,4}, ?)?(SignedHeaders=[a-z;-]{0,20}, ?)?(Signature=[0-9a-f]{0,70})?",
            path in "[/a-z%0-9.~ü]{0,30}",
            query in "[a-z=&%+0-9]{0,30}",
            date in "[0-9TZ]{0,17}",
            body in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let headers = [("host", "h"), ("x-sdk-date", date.as_str()), ("content-type", "application/json")];
            let request = Request { method: "POST", path: &path, query: &query, headers: &headers, body: &body };
            let _ = signing::canonical_uri(&path);
            let _ = signing::canonical_query(&query);
            let _ = dbwatermark::server::signing::parse_sdk_date(&date);
            if let Ok(a) = Authorization::parse(&auth) {
                prop_assert!(signing::verify(&request, &a, "sk").is_err());
            }
        }

        /// A registry file of any text is read or rejected with a line
        /// number, never a panic.
        #[cfg(feature = "registry")]
        #[test]
        fn any_registry_text_is_read_or_rejected_by_line(text in "[{}\"a-z:,0-9 \\n#]{0,200}") {
            if let Err(e) = dbwatermark::registry::parse(&text) {
                prop_assert!(e.to_string().starts_with("line "), "{}", e);
            }
        }
    }
}

#[test]
fn a_signed_request_replayed_with_another_body_and_the_old_body_hash_is_rejected() {
    use sha2::{Digest, Sha256};
    let v = &vectors()[0];
    let auth = Authorization::parse(&v.authorization).unwrap();
    let hash: String = Sha256::digest(&v.body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let verify = |body: &[u8], claim: &str| {
        with_request(v, &[("X-Sdk-Content-Sha256", claim)], |r| {
            signing::verify(&Request { body, ..*r }, &auth, &v.sk)
        })
    };
    // The claim of the captured request's own hash, with its own body: the
    // SDK signs the claim literally, so this is the original request.
    assert_eq!(verify(&v.body, &hash), Ok(()));
    // The same signature and claim with an attacker's body.
    let forged = br#"{"task_name":"attacker","files":["../../etc/passwd"]}"#;
    assert_eq!(verify(forged, &hash), Err(SignError::BodyHash));
    // A body sent as unsigned is refused, whatever the signature.
    assert_eq!(verify(forged, "UNSIGNED-PAYLOAD"), Err(SignError::BodyHash));
}
