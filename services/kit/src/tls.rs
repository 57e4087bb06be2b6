//! rustls-based TLS for servers and clients, and mTLS peer identities.

use std::path::Path;

use anyhow::Context;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::config::TlsFiles;

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Server TLS from PEM files. TLS is not optional: a server without a
/// certificate and key does not start.
pub fn server_config(files: &TlsFiles) -> anyhow::Result<ServerTlsConfig> {
    let (Some(cert), Some(key)) = (&files.cert, &files.key) else {
        anyhow::bail!("tls.cert and tls.key are required (Schakel never serves plaintext)");
    };
    let mut config = ServerTlsConfig::new().identity(Identity::from_pem(read(cert)?, read(key)?));
    match &files.ca {
        Some(ca) => {
            config = config
                .client_ca_root(Certificate::from_pem(read(ca)?))
                .client_auth_optional(!files.require_client_cert);
        }
        None if files.require_client_cert => {
            anyhow::bail!("tls.require_client_cert needs tls.ca to verify client certificates")
        }
        None => {}
    }
    Ok(config)
}

/// Client TLS trusting `ca`, presenting the client certificate in `client`
/// when there is one (mTLS). The server's certificate must be valid for the
/// host of the URL dialled (a DNS name or an IP address).
pub fn client_config(ca: &Path, client: Option<(&Path, &Path)>) -> anyhow::Result<ClientTlsConfig> {
    let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca)?));
    if let Some((cert, key)) = client {
        config = config.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    Ok(config)
}

/// Client TLS for a service calling its peer `service` (identity, audit,
/// legal-basis, policy): trust the deployment CA, present this service's own
/// certificate, and accept only a server certificate issued for `service`
/// (its DNS name `service`, whatever address is dialled), so that one
/// service's certificate cannot stand in for another's.
pub fn peer_client_config(files: &TlsFiles, service: &str) -> anyhow::Result<ClientTlsConfig> {
    let ca = files
        .ca
        .as_deref()
        .context("tls.ca is required to call other services")?;
    let client = files.cert.as_deref().zip(files.key.as_deref());
    Ok(client_config(ca, client)?.domain_name(service))
}

/// The RFC 8705 confirmation of this service's own certificate
/// (`server.tls.cert`), which its service tokens are bound to.
pub fn own_confirmation(files: &TlsFiles) -> anyhow::Result<crate::auth::Confirmation> {
    let cert = files.cert.as_deref().context("tls.cert is required")?;
    let pem = String::from_utf8(read(cert)?).context("tls.cert is not PEM text")?;
    crate::auth::Confirmation::of_pem(&pem)
}

/// The verified mTLS client certificate (DER) of this call, if the client
/// presented one. rustls has already checked it against the configured
/// client CA.
pub fn peer_certificate<T>(request: &tonic::Request<T>) -> Option<Vec<u8>> {
    let certs = request.peer_certs()?;
    Some(certs.first()?.as_ref().to_vec())
}

/// The subject common name of a DER-encoded certificate.
pub fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_owned();
    Some(cn)
}
