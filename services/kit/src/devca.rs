//! A development certificate authority (rcgen) for `schakel dev` and tests.
//!
//! Never for production: the CA key sits next to the certificates it signs.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A CA that can issue server and client certificates.
pub struct DevCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

/// A certificate and its private key, PEM encoded.
#[derive(Clone, Debug)]
pub struct IssuedCert {
    /// Certificate (PEM).
    pub cert_pem: String,
    /// Private key (PKCS#8 PEM).
    pub key_pem: String,
}

/// Paths of the files `schakel dev` writes under `<data-dir>/tls`.
#[derive(Clone, Debug)]
pub struct DevPki {
    /// The CA certificate clients must trust.
    pub ca: PathBuf,
    /// Server certificate for `localhost`, `127.0.0.1` and `::1`.
    pub server_cert: PathBuf,
    /// Its key.
    pub server_key: PathBuf,
    /// A client certificate (CN `schakel-dev-client`) for mTLS calls.
    pub client_cert: PathBuf,
    /// Its key.
    pub client_key: PathBuf,
}

impl DevCa {
    /// Creates a fresh CA.
    pub fn generate(name: &str) -> anyhow::Result<Self> {
        let key = KeyPair::generate().context("generating CA key")?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Schakel development");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).context("self-signing CA")?;
        Ok(Self {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads a CA from its certificate and key (PEM).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> anyhow::Result<Self> {
        let key = KeyPair::from_pem(key_pem).context("parsing CA key")?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key).context("parsing CA certificate")?;
        Ok(Self {
            issuer,
            cert_pem: cert_pem.to_owned(),
        })
    }

    /// The CA certificate (PEM).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA key (PEM).
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// A certificate usable both as server (for `hosts`) and as mTLS client.
    pub fn issue_server(&self, common_name: &str, hosts: &[&str]) -> anyhow::Result<IssuedCert> {
        let names: Vec<String> = hosts.iter().map(|h| (*h).to_owned()).collect();
        self.issue(
            common_name,
            names,
            &[
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        )
    }

    /// A client certificate whose subject common name is `common_name`.
    pub fn issue_client(&self, common_name: &str) -> anyhow::Result<IssuedCert> {
        self.issue(
            common_name,
            Vec::new(),
            &[ExtendedKeyUsagePurpose::ClientAuth],
        )
    }

    fn issue(
        &self,
        common_name: &str,
        names: Vec<String>,
        usages: &[ExtendedKeyUsagePurpose],
    ) -> anyhow::Result<IssuedCert> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = usages.to_vec();
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = params
            .signed_by(&key, &self.issuer)
            .context("signing certificate")?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// Creates (or reuses) the development PKI under `dir`: CA, a server
/// certificate and a client certificate. Keys are written with mode 0600.
pub fn ensure_dev_pki(dir: &Path) -> anyhow::Result<DevPki> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let pki = DevPki {
        ca: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
        client_cert: dir.join("client.pem"),
        client_key: dir.join("client.key"),
    };
    let ca_key = dir.join("ca.key");
    let ca = if pki.ca.exists() && ca_key.exists() {
        DevCa::from_pem(
            &std::fs::read_to_string(&pki.ca)?,
            &std::fs::read_to_string(&ca_key)?,
        )?
    } else {
        let ca = DevCa::generate("Schakel development CA")?;
        write_private(&ca_key, &ca.key_pem())?;
        std::fs::write(&pki.ca, ca.cert_pem())?;
        // A new CA invalidates whatever was issued before.
        for stale in [&pki.server_cert, &pki.client_cert] {
            let _ = std::fs::remove_file(stale);
        }
        ca
    };
    if !pki.server_cert.exists() || !pki.server_key.exists() {
        let issued = ca.issue_server("schakel-dev", &["localhost", "127.0.0.1", "::1"])?;
        write_private(&pki.server_key, &issued.key_pem)?;
        std::fs::write(&pki.server_cert, issued.cert_pem)?;
    }
    if !pki.client_cert.exists() || !pki.client_key.exists() {
        let issued = ca.issue_client("schakel-dev-client")?;
        write_private(&pki.client_key, &issued.key_pem)?;
        std::fs::write(&pki.client_cert, issued.cert_pem)?;
    }
    Ok(pki)
}

/// Writes a secret file readable by its owner only (mode 0600 on Unix).
pub fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(contents.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pki_is_created_once_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = ensure_dev_pki(dir.path()).expect("creates");
        let ca = std::fs::read_to_string(&first.ca).expect("ca");
        let server = std::fs::read_to_string(&first.server_cert).expect("server");
        let again = ensure_dev_pki(dir.path()).expect("reuses");
        assert_eq!(ca, std::fs::read_to_string(&again.ca).expect("ca"));
        assert_eq!(
            server,
            std::fs::read_to_string(&again.server_cert).expect("server")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("ca.key"))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn reloaded_ca_issues_certificates() {
        let ca = DevCa::generate("test").expect("ca");
        let reloaded = DevCa::from_pem(ca.cert_pem(), &ca.key_pem()).expect("reload");
        let cert = reloaded.issue_client("partner-system").expect("issue");
        assert!(cert.cert_pem.contains("BEGIN CERTIFICATE"));
    }
}
