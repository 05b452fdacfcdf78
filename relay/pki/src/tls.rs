//! rustls configurations from PEM files, on the ring provider.
//!
//! Every server built here can require a client certificate that chains to a
//! configured CA (mutual TLS): a client without one is refused in the handshake.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::PkiError;

/// Installs ring as the process-wide rustls crypto provider. Idempotent; every
/// binary calls it first so that no code path can pick another provider.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, PkiError> {
    std::fs::read(path).map_err(|source| PkiError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Parses every certificate in a PEM buffer; `origin` names it in errors.
pub fn parse_certs(pem: &[u8], origin: &Path) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PkiError::Pem {
            path: origin.to_owned(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(PkiError::Pem {
            path: origin.to_owned(),
            reason: "no certificate found".into(),
        });
    }
    Ok(certs)
}

/// Reads every certificate in a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    parse_certs(&read(path)?, path)
}

/// Reads the private key (PKCS#8, PKCS#1 or SEC1) in a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, PkiError> {
    PrivateKeyDer::from_pem_slice(&read(path)?).map_err(|e| PkiError::Pem {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// A root store holding every certificate in the PEM file.
pub fn root_store(path: &Path) -> Result<RootCertStore, PkiError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|e| PkiError::Pem {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    }
    Ok(roots)
}

/// A server configuration presenting `cert`/`key`. With `client_ca`, a client
/// certificate chaining to it is required; without, none is asked for.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
    alpn: &[&[u8]],
) -> Result<rustls::ServerConfig, PkiError> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| PkiError::Tls(e.to_string()))?;
    let builder = match client_ca {
        Some(ca) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(root_store(ca)?), provider())
                    .build()
                    .map_err(|e| PkiError::Tls(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(load_certs(cert)?, load_key(key)?)
        .map_err(|e| PkiError::Tls(format!("{}: {e}", cert.display())))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// A client configuration trusting the CA in `ca`, presenting `identity`
/// (certificate and key files) when given.
pub fn client_config(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
    alpn: &[&[u8]],
) -> Result<rustls::ClientConfig, PkiError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| PkiError::Tls(e.to_string()))?
        .with_root_certificates(root_store(ca)?);
    let mut config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
            .map_err(|e| PkiError::Tls(format!("{}: {e}", cert.display())))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DevCa, Subject};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn handshake(
        server: rustls::ServerConfig,
        client: rustls::ClientConfig,
    ) -> Result<Vec<u8>, String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let srv = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            if let Ok(mut tls) = acceptor.accept(tcp).await {
                let _ = tls.write_all(b"hello").await;
                let _ = tls.shutdown().await;
            }
        });
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let result = async {
            let mut tls = connector
                .connect(name, tcp)
                .await
                .map_err(|e| e.to_string())?;
            let mut buf = Vec::new();
            tls.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
            Ok(buf)
        }
        .await;
        let _ = srv.await;
        result
    }

    #[tokio::test]
    async fn mutual_tls_admits_only_clients_of_the_configured_ca() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ca = DevCa::new("ca").unwrap();
        ca.as_issued().write(d, "ca").unwrap();
        let srv = ca
            .server_cert("server", &["localhost"])
            .unwrap()
            .write(d, "server")
            .unwrap();
        let subject = Subject {
            serial_number: Some("2120002411"),
            organisation: Some("Sundsvalls kommun"),
            common_name: "client",
        };
        let good = ca.client_cert(&subject).unwrap().write(d, "good").unwrap();
        let other_ca = DevCa::new("other").unwrap();
        let bad = other_ca
            .client_cert(&subject)
            .unwrap()
            .write(d, "bad")
            .unwrap();
        let ca_path = d.join("ca.pem");

        let server = || server_config(&srv.cert, &srv.key, Some(&ca_path), &[]).unwrap();
        let ok = handshake(
            server(),
            client_config(&ca_path, Some((&good.cert, &good.key)), &[]).unwrap(),
        )
        .await;
        assert_eq!(ok.unwrap(), b"hello");

        let refused = handshake(
            server(),
            client_config(&ca_path, Some((&bad.cert, &bad.key)), &[]).unwrap(),
        )
        .await;
        assert!(
            refused.is_err(),
            "a certificate from another CA must be refused"
        );

        let anonymous = handshake(server(), client_config(&ca_path, None, &[]).unwrap()).await;
        assert!(
            anonymous.is_err(),
            "a client without a certificate must be refused"
        );
    }

    #[test]
    fn a_missing_file_is_named_in_the_error() {
        let e = load_certs(Path::new("/nonexistent/ca.pem")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ca.pem"));
    }
}
