//! PostgreSQL over TLS with rustls, following libpq's `sslmode` and `sslrootcert`.
//!
//! Owns: taking those two parameters out of a `postgres://` URL (tokio-postgres knows neither
//! `verify-ca` nor `verify-full`), the default when `sslmode` is absent (no TLS for a loopback
//! or Unix-socket host; `verify-full` for anything else, so a database across a network is
//! never reached in plain text or without checking who answers), and the rustls client
//! configuration for each mode. Roots come from `sslrootcert` (PEM) or else the operating
//! system's trust store.
//!
//! | `sslmode` | encrypted | certificate chain checked | host name checked |
//! |:--|:--|:--|:--|
//! | `disable` | no | – | – |
//! | `prefer` | if the server offers it | no | no |
//! | `require` | yes | no | no |
//! | `verify-ca` | yes | yes | no |
//! | `verify-full` | yes | yes | yes |

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use super::StorageError;

/// libpq's `sslmode` values that mean something here (`allow` is treated as `prefer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgSslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl PgSslMode {
    fn parse(text: &str) -> Result<Self, StorageError> {
        Ok(match text {
            "disable" => Self::Disable,
            "allow" | "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            other => {
                return Err(StorageError::Tls(format!(
                    "sslmode={other} is not one of disable, prefer, require, verify-ca, verify-full"
                )));
            }
        })
    }
}

/// What the URL asked for, with `sslmode` and `sslrootcert` taken out of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgTlsRequest {
    /// The URL without the two parameters, for tokio-postgres.
    pub url: String,
    pub mode: Option<PgSslMode>,
    pub root_cert: Option<PathBuf>,
}

/// Splits `sslmode` and `sslrootcert` off `url`'s query string.
pub fn split_url(url: &str) -> Result<PgTlsRequest, StorageError> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, q),
        None => (url, ""),
    };
    let mut mode = None;
    let mut root_cert = None;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", v)) => mode = Some(PgSslMode::parse(v)?),
            Some(("sslrootcert", v)) => root_cert = Some(PathBuf::from(v)),
            _ => rest.push(pair),
        }
    }
    let url = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok(PgTlsRequest {
        url,
        mode,
        root_cert,
    })
}

/// The mode when the URL names none: no TLS when every host is this machine (a Unix socket,
/// `localhost` or a loopback address), `verify-full` otherwise.
pub fn default_mode(config: &tokio_postgres::Config) -> PgSslMode {
    let local = config.get_hosts().iter().all(|h| match h {
        tokio_postgres::config::Host::Unix(_) => true,
        tokio_postgres::config::Host::Tcp(name) => {
            name == "localhost"
                || name
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
    });
    if local {
        PgSslMode::Disable
    } else {
        PgSslMode::VerifyFull
    }
}

/// tokio-postgres's own setting for `mode` (it negotiates; rustls verifies).
pub fn negotiation(mode: PgSslMode) -> tokio_postgres::config::SslMode {
    use tokio_postgres::config::SslMode;
    match mode {
        PgSslMode::Disable => SslMode::Disable,
        PgSslMode::Prefer => SslMode::Prefer,
        PgSslMode::Require | PgSslMode::VerifyCa | PgSslMode::VerifyFull => SslMode::Require,
    }
}

fn roots(root_cert: Option<&Path>) -> Result<RootCertStore, StorageError> {
    let mut store = RootCertStore::empty();
    match root_cert {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    StorageError::Tls(format!(
                        "sslrootcert {} cannot be read: {e}",
                        path.display()
                    ))
                })?;
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(StorageError::Tls(format!(
                    "sslrootcert {} holds no usable certificate",
                    path.display()
                )));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                return Err(StorageError::Tls(
                    "no trusted certificates found on this system: give sslrootcert=PATH".into(),
                ));
            }
        }
    }
    Ok(store)
}

/// The rustls configuration for `mode`.
pub fn client_config(
    mode: PgSslMode,
    root_cert: Option<&Path>,
) -> Result<ClientConfig, StorageError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| StorageError::Tls(e.to_string()))?;
    Ok(match mode {
        PgSslMode::Disable | PgSslMode::Prefer | PgSslMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth(),
        PgSslMode::VerifyCa => {
            let inner = WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots(root_cert)?),
                Arc::clone(&provider),
            )
            .build()
            .map_err(|e| StorageError::Tls(e.to_string()))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly(inner)))
                .with_no_client_auth()
        }
        PgSslMode::VerifyFull => builder
            .with_root_certificates(roots(root_cert)?)
            .with_no_client_auth(),
    })
}

/// `prefer` and `require`: encrypted, but whoever answers is not checked (libpq's meaning).
/// Handshake signatures are still verified, so the session key is the server's.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted root; the name is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
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
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_are_taken_out_and_the_rest_kept() {
        let r = split_url(
            "postgres://u@db.example:5432/epr?sslmode=verify-full&sslrootcert=/etc/ca.pem&application_name=x",
        )
        .unwrap();
        assert_eq!(r.url, "postgres://u@db.example:5432/epr?application_name=x");
        assert_eq!(r.mode, Some(PgSslMode::VerifyFull));
        assert_eq!(r.root_cert, Some(PathBuf::from("/etc/ca.pem")));
        let plain = split_url("postgres://u@127.0.0.1/epr").unwrap();
        assert_eq!(plain.url, "postgres://u@127.0.0.1/epr");
        assert_eq!(plain.mode, None);
        assert!(split_url("postgres://h/db?sslmode=sometimes").is_err());
    }

    #[test]
    fn a_remote_database_defaults_to_verify_full_and_a_local_one_to_plain() {
        let mode = |url: &str| default_mode(&url.parse().unwrap());
        assert_eq!(mode("postgres://u@db.example/epr"), PgSslMode::VerifyFull);
        assert_eq!(mode("postgres://u@10.0.0.5/epr"), PgSslMode::VerifyFull);
        assert_eq!(mode("postgres://u@127.0.0.1/epr"), PgSslMode::Disable);
        assert_eq!(mode("postgres://u@localhost/epr"), PgSslMode::Disable);
        assert_eq!(mode("postgres://u@[::1]/epr"), PgSslMode::Disable);
        assert_eq!(
            mode("postgres://u@127.0.0.1,db.example/epr"),
            PgSslMode::VerifyFull
        );
    }
}
