//! TLS settings of a database URL, as libpq names them: `sslmode`
//! (`disable`, `allow`, `prefer`, `require`, `verify-ca`, `verify-full`) and
//! `sslrootcert` (a PEM file of the certificates to trust). They are taken
//! out of the URL before the driver parses it, and the same two parameters
//! work for MySQL/MariaDB URLs.
//!
//! | `sslmode` | TLS | certificate checked |
//! |---|---|---|
//! | `disable` | never | — |
//! | `allow`, `prefer` (PostgreSQL's default) | when the server offers it | no (as libpq: only encryption) |
//! | `require` | always | only when `sslrootcert` is given (then as `verify-ca`) |
//! | `verify-ca` | always | chain to `sslrootcert` (else the Mozilla roots) |
//! | `verify-full` | always | chain and host name |

use std::path::PathBuf;

use super::{DbUrl, Result};

/// How much TLS a URL asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    /// Whether the connection must be encrypted.
    pub(crate) fn required(self) -> bool {
        matches!(self, Self::Require | Self::VerifyCa | Self::VerifyFull)
    }
}

/// The TLS parameters of a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsParams {
    /// `sslmode`, if given.
    pub(crate) mode: Option<SslMode>,
    /// `sslrootcert`, if given.
    pub(crate) root_cert: Option<PathBuf>,
}

/// Splits `sslmode` and `sslrootcert` off the query of `text` (the secret
/// text of `url`): the URL without them, and what they said.
///
/// # Errors
///
/// `Error::Url` for an unknown `sslmode`, or one that needs TLS in a
/// build without the `tls` feature.
pub(crate) fn take_params(url: &DbUrl, text: &str) -> Result<(String, TlsParams)> {
    let mut params = TlsParams {
        mode: None,
        root_cert: None,
    };
    let Some((base, query)) = text.split_once('?') else {
        return Ok((text.to_owned(), params));
    };
    let mut kept = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("sslmode", value)) => {
                params.mode = Some(match value {
                    "disable" => SslMode::Disable,
                    "allow" | "prefer" => SslMode::Prefer,
                    "require" => SslMode::Require,
                    "verify-ca" => SslMode::VerifyCa,
                    "verify-full" => SslMode::VerifyFull,
                    other => {
                        return Err(url.error(format!(
                            "sslmode `{other}`: one of disable, allow, prefer, require, verify-ca, verify-full"
                        )));
                    }
                });
            }
            Some(("sslrootcert", value)) => params.root_cert = Some(PathBuf::from(value)),
            _ => kept.push(pair),
        }
    }
    if cfg!(not(feature = "tls")) && params.mode.is_some_and(SslMode::required) {
        return Err(
            url.error("this build has no TLS support (feature `tls`); it cannot honour sslmode")
        );
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, params))
}

/// The certificates of `path` (PEM).
#[cfg(all(feature = "tls", feature = "postgres"))]
pub(crate) fn root_certificates(
    url: &DbUrl,
    path: &std::path::Path,
) -> Result<rustls::RootCertStore> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let bad = |why: String| url.error(format!("sslrootcert {}: {why}", path.display()));
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))?;
    for cert in certs {
        roots
            .add(cert.map_err(|e| bad(e.to_string()))?)
            .map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("holds no certificate".to_owned()));
    }
    Ok(roots)
}

/// The rustls configuration for `params` (see the module's table).
#[cfg(all(feature = "tls", feature = "postgres"))]
pub(crate) fn client_config(url: &DbUrl, params: &TlsParams) -> Result<rustls::ClientConfig> {
    use std::sync::Arc;

    use rustls::client::WebPkiServerVerifier;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mode = params.mode.unwrap_or(SslMode::Prefer);
    let checked = matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull)
        || (mode == SslMode::Require && params.root_cert.is_some());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| url.error(format!("TLS: {e}")))?;
    let verifier: Arc<dyn rustls::client::danger::ServerCertVerifier> = if checked {
        let roots = match &params.root_cert {
            Some(path) => root_certificates(url, path)?,
            None => {
                rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned())
            }
        };
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| url.error(format!("TLS: {e}")))?;
        if mode == SslMode::VerifyFull {
            webpki
        } else {
            Arc::new(Lenient {
                provider,
                chain: Some(webpki),
            })
        }
    } else {
        Arc::new(Lenient {
            provider,
            chain: None,
        })
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// A certificate check laxer than `verify-full`: none at all (`prefer`
/// and `require` without `sslrootcert`: encryption only, as libpq), or the
/// chain to a trusted root without comparing the name on the certificate
/// with the host (`verify-ca`). The handshake's signatures are always
/// checked.
#[cfg(all(feature = "tls", feature = "postgres"))]
#[derive(Debug)]
struct Lenient {
    provider: std::sync::Arc<rustls::crypto::CryptoProvider>,
    chain: Option<std::sync::Arc<rustls::client::WebPkiServerVerifier>>,
}

#[cfg(all(feature = "tls", feature = "postgres"))]
impl rustls::client::danger::ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::CertificateError::{NotValidForName, NotValidForNameContext};
        let Some(chain) = &self.chain else {
            return Ok(rustls::client::danger::ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                NotValidForName | NotValidForNameContext { .. },
            )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_parameters_are_taken_out_of_the_url_and_checked() {
        let url = DbUrl::parse("postgresql://u@h/d").unwrap().unwrap();
        let (rest, p) = take_params(
            &url,
            "postgresql://u:pw@h/d?application_name=x&sslmode=prefer&sslrootcert=/etc/ca.pem",
        )
        .unwrap();
        assert_eq!(rest, "postgresql://u:pw@h/d?application_name=x");
        assert_eq!(p.mode, Some(SslMode::Prefer));
        assert_eq!(
            p.root_cert.as_deref(),
            Some(std::path::Path::new("/etc/ca.pem"))
        );
        let (rest, p) = take_params(&url, "postgresql://u@h/d?sslmode=disable").unwrap();
        assert_eq!(
            (rest.as_str(), p.mode),
            ("postgresql://u@h/d", Some(SslMode::Disable))
        );
        let e = take_params(&url, "postgresql://u@h/d?sslmode=always").unwrap_err();
        assert!(e.to_string().contains("sslmode `always`"), "{e}");
        let required = take_params(&url, "postgresql://u@h/d?sslmode=verify-full");
        if cfg!(feature = "tls") {
            assert_eq!(required.unwrap().1.mode, Some(SslMode::VerifyFull));
        } else {
            let e = required.unwrap_err().to_string();
            assert!(e.contains("feature `tls`"), "{e}");
        }
    }
}
