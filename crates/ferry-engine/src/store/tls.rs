//! TLS to PostgreSQL: libpq's `sslmode` and `sslrootcert` in a state URL, on rustls.
//!
//! tokio-postgres knows `sslmode` `disable`, `prefer` and `require`, and checks no certificate
//! itself: what is checked is the rustls verifier's, chosen here as libpq chooses it.
//! `prefer` (the default) and `require` encrypt without checking who answers; `verify-ca`
//! checks that a trusted root signs the server's certificate, `verify-full` also that the
//! certificate names the host. The trusted roots are `sslrootcert=FILE` (PEM) or, without it
//! or with `sslrootcert=system`, the system's. As in libpq, `require` with a `sslrootcert`
//! checks as `verify-ca` does.

use std::path::PathBuf;
use std::sync::Arc;

use percent_encoding::percent_decode_str;
use tokio_postgres_rustls::MakeRustlsConnect;
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{self, CryptoProvider};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    self, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

/// What the URL asks of the connection's encryption (libpq's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// Where the roots that may sign the server's certificate come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    System,
    File(PathBuf),
}

/// A state URL taken apart: what tokio-postgres reads, and what ferry decides itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// The URL without `sslrootcert`, its `sslmode` one tokio-postgres knows.
    pub url: String,
    pub mode: SslMode,
    pub roots: Option<Roots>,
}

/// Why a state URL's TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("`sslmode={0}` is not one of disable, prefer, require, verify-ca, verify-full")]
    UnknownMode(String),
    #[error("`sslrootcert={path}` cannot be read: {why}")]
    RootsUnreadable { path: String, why: String },
    #[error(
        "`sslrootcert={0}` holds no certificate ferry can use: it must be PEM (`-----BEGIN CERTIFICATE-----`)"
    )]
    NoRootsInFile(String),
    #[error(
        "this system has no trusted roots to check the server's certificate with: name them with `sslrootcert=FILE` (PEM)"
    )]
    NoSystemRoots,
    #[error("cannot set up TLS: {0}")]
    Setup(String),
}

/// Takes `sslmode` and `sslrootcert` out of a `postgres://` URL's query. A URL of another
/// form (libpq's `key=value` pairs) is left to tokio-postgres as it is.
pub fn options(url: &str) -> Result<TlsOptions, TlsError> {
    let mut mode = SslMode::Prefer;
    let mut roots = None;
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let Some((base, query)) = url.split_once('?').filter(|_| is_url) else {
        return Ok(TlsOptions {
            url: url.to_owned(),
            mode,
            roots,
        });
    };
    let mut kept = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode_str(value).decode_utf8_lossy();
        match key {
            "sslmode" => {
                mode = match &*value {
                    "disable" => SslMode::Disable,
                    "prefer" => SslMode::Prefer,
                    "require" => SslMode::Require,
                    "verify-ca" => SslMode::VerifyCa,
                    "verify-full" => SslMode::VerifyFull,
                    other => return Err(TlsError::UnknownMode(other.to_owned())),
                }
            }
            "sslrootcert" => {
                roots = Some(match &*value {
                    "system" => Roots::System,
                    file => Roots::File(PathBuf::from(file)),
                });
            }
            _ => kept.push(pair),
        }
    }
    let told = match mode {
        SslMode::Disable => "sslmode=disable",
        SslMode::Prefer => "sslmode=prefer",
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => "sslmode=require",
    };
    kept.push(told);
    Ok(TlsOptions {
        url: format!("{base}?{}", kept.join("&")),
        mode,
        roots,
    })
}

/// The connector for those options.
pub(crate) fn connector(options: &TlsOptions) -> Result<MakeRustlsConnect, TlsError> {
    let provider = Arc::new(crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?;
    // The roots the chain must reach, if it is checked at all (libpq: `require` checks it
    // only when given roots).
    let roots = match (options.mode, &options.roots) {
        (SslMode::Disable | SslMode::Prefer, _) | (SslMode::Require, None) => None,
        (SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull, roots) => {
            Some(roots.as_ref().unwrap_or(&Roots::System))
        }
    };
    let chain = match roots {
        None => None,
        Some(roots) => Some(
            WebPkiServerVerifier::builder_with_provider(
                Arc::new(trusted_roots(roots)?),
                provider.clone(),
            )
            .build()
            .map_err(|e| TlsError::Setup(e.to_string()))?,
        ),
    };
    let config = match chain {
        Some(verifier) if options.mode == SslMode::VerifyFull => {
            builder.with_webpki_verifier(verifier)
        }
        chain => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Lenient { provider, chain })),
    }
    .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

fn trusted_roots(roots: &Roots) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                return Err(TlsError::NoSystemRoots);
            }
        }
        Roots::File(path) => {
            let shown = path.display().to_string();
            let unreadable = |why: String| TlsError::RootsUnreadable {
                path: shown.clone(),
                why,
            };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| unreadable(e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| unreadable(e.to_string()))?;
            store.add_parsable_certificates(certs);
            if store.is_empty() {
                return Err(TlsError::NoRootsInFile(shown));
            }
        }
    }
    Ok(store)
}

/// The checks `verify-full` does not make. `chain: None` (`prefer`, `require` without roots):
/// the connection is encrypted, its server not checked (libpq's meaning). `Some` (`verify-ca`):
/// the chain must reach a trusted root, but the name in the certificate is not compared with
/// the host (rustls checks the name only after the chain). Either way the handshake must be
/// signed by the certificate the server shows.
#[derive(Debug)]
struct Lenient {
    provider: Arc<CryptoProvider>,
    chain: Option<Arc<WebPkiServerVerifier>>,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// What to tell a user whose connection failed on the server's certificate, found among the
/// error's sources (tokio-rustls carries rustls' error inside an I/O error).
pub(crate) fn certificate_hint(error: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    let mut source = Some(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(rustls::Error::InvalidCertificate(why)) =
                inner.downcast_ref::<rustls::Error>()
        {
            return Some(match why {
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => {
                    "the server's certificate does not name the host in the URL: connect by a name it has, or use `sslmode=verify-ca` to check only who signed it"
                }
                _ => {
                    "the server's certificate is not signed by a trusted root: name the roots that sign it with `sslrootcert=FILE` (PEM), or use `sslmode=require` to encrypt without checking it"
                }
            });
        }
        source = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_modes_reach_tokio_postgres_as_require_and_the_root_file_is_taken_out() {
        let o = options("postgres://u:p@db.example:5432/ferry?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=x").unwrap();
        assert_eq!(o.mode, SslMode::VerifyFull);
        assert_eq!(o.roots, Some(Roots::File("/etc/ca.pem".into())));
        assert_eq!(
            o.url,
            "postgres://u:p@db.example:5432/ferry?application_name=x&sslmode=require"
        );
        o.url.parse::<tokio_postgres::Config>().unwrap();
    }

    #[test]
    fn a_url_without_sslmode_prefers_tls_as_libpq_does() {
        let o = options("postgres://ferry@127.0.0.1/ferry").unwrap();
        assert_eq!((o.mode, o.roots), (SslMode::Prefer, None));
        assert_eq!(o.url, "postgres://ferry@127.0.0.1/ferry");
        let o = options("postgresql://h/db?sslrootcert=system&sslmode=verify-ca").unwrap();
        assert_eq!((o.mode, o.roots), (SslMode::VerifyCa, Some(Roots::System)));
        assert_eq!(o.url, "postgresql://h/db?sslmode=require");
    }

    #[test]
    fn an_unknown_sslmode_is_named_with_the_ones_there_are() {
        let e = options("postgres://h/db?sslmode=allow").unwrap_err();
        assert_eq!(
            e.to_string(),
            "`sslmode=allow` is not one of disable, prefer, require, verify-ca, verify-full"
        );
    }

    #[test]
    fn a_root_file_that_is_missing_or_not_pem_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("ca.pem");
        let url = format!(
            "postgres://h/db?sslmode=verify-full&sslrootcert={}",
            missing.display()
        );
        let e = connector(&options(&url).unwrap()).err().unwrap();
        assert!(matches!(e, TlsError::RootsUnreadable { .. }), "{e}");
        assert!(e.to_string().contains("ca.pem"), "{e}");
        std::fs::write(&missing, "not a certificate\n").unwrap();
        let e = connector(&options(&url).unwrap()).err().unwrap();
        assert!(matches!(e, TlsError::NoRootsInFile(_)), "{e}");
    }

    proptest::proptest! {
        #[test]
        fn any_url_is_taken_apart_without_a_panic(url in "(postgres://)?[a-z@:/?&=%.0-9A-F-]{0,60}") {
            let _ = options(&url);
        }
    }
}
