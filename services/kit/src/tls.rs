//! rustls-based TLS for servers and clients, and mTLS peer identities.

use std::path::Path;

use anyhow::Context;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::config::TlsFiles;

/// The TLS server name every Schakel certificate carries, used by clients
/// whatever address they dial.
pub const SERVER_NAME: &str = "localhost";

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

/// Client TLS trusting `ca`, presenting the client certificate in `files`
/// when there is one (mTLS).
pub fn client_config(ca: &Path, client: Option<(&Path, &Path)>) -> anyhow::Result<ClientTlsConfig> {
    let mut config = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(ca)?))
        .domain_name(SERVER_NAME);
    if let Some((cert, key)) = client {
        config = config.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    Ok(config)
}

/// Client TLS for a service calling its peers: trust the deployment CA and
/// present this service's own certificate.
pub fn peer_client_config(files: &TlsFiles) -> anyhow::Result<ClientTlsConfig> {
    let ca = files
        .ca
        .as_deref()
        .context("tls.ca is required to call other services")?;
    let client = files.cert.as_deref().zip(files.key.as_deref());
    client_config(ca, client)
}

/// The subject common name of the verified mTLS client certificate of this
/// call, if the client presented one. rustls has already checked it against
/// the configured client CA.
pub fn peer_common_name<T>(request: &tonic::Request<T>) -> Option<String> {
    let certs = request.peer_certs()?;
    let leaf = certs.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_owned();
    Some(cn)
}
