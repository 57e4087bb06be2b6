//! Typed configuration: defaults, then an optional TOML file, then `SCHAKEL_*`
//! environment variables (nested keys with `__`, e.g. `SCHAKEL_TLS__CERT`).
//!
//! Configuration is validated before anything binds; a bad value is one clear
//! line and exit code 64 (`EX_USAGE`) in the binary.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// Exit code for configuration errors (`EX_USAGE` from sysexits.h).
pub const EXIT_CONFIG: i32 = 64;

/// A configuration problem, reported as one line.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

/// Loads `T` from its defaults, the optional TOML `file`, and `SCHAKEL_*`
/// environment variables, in that order of precedence (last wins).
pub fn load<T>(file: Option<&std::path::Path>) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Serialize + Default,
{
    let mut figment = Figment::from(Serialized::defaults(T::default()));
    if let Some(file) = file {
        if !file.exists() {
            return Err(ConfigError(format!(
                "config file {} does not exist",
                file.display()
            )));
        }
        figment = figment.merge(Toml::file(file));
    }
    figment
        .merge(Env::prefixed("SCHAKEL_").split("__"))
        .extract()
        .map_err(|e| ConfigError(e.to_string().replace('\n', "; ")))
}

/// Decodes a 256-bit key from its standard base64 text form (how key files
/// hold master keys and signing seeds; `openssl rand -base64 32` makes one).
pub fn key_from_base64(text: &str) -> anyhow::Result<[u8; 32]> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| anyhow::anyhow!("not base64"))?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("must be 32 bytes"))
}

/// Reads the 256-bit key in the file `path` names (setting `setting`).
pub fn read_key_file(setting: &str, path: Option<&std::path::Path>) -> anyhow::Result<[u8; 32]> {
    use anyhow::Context;
    let path = path.with_context(|| format!("{setting} is required"))?;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading {} ({setting})", path.display()))?;
    key_from_base64(&text).with_context(|| format!("the key in {} ({setting})", path.display()))
}

/// Where and how a service listens.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerConfig {
    /// Address to bind; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Server certificate, key and the CA for client certificates.
    pub tls: TlsFiles,
    /// Request limits.
    pub limits: Limits,
    /// Time in-flight calls get to finish after a shutdown signal.
    #[serde(with = "secs")]
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            tls: TlsFiles::default(),
            limits: Limits::default(),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// PEM files for TLS.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TlsFiles {
    /// Certificate chain (PEM) this process presents, as server and as client.
    pub cert: Option<PathBuf>,
    /// Private key (PEM) for `cert`.
    pub key: Option<PathBuf>,
    /// CA (PEM) that issues client certificates and the other services' certificates.
    pub ca: Option<PathBuf>,
    /// Refuse connections without a client certificate (mTLS required). Services
    /// in microservices mode set this; `schakel dev` accepts password logins
    /// without a client certificate.
    pub require_client_cert: bool,
}

/// Limits every service applies to each call.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Largest request message accepted, in bytes (RESOURCE_EXHAUSTED beyond).
    pub max_request_bytes: usize,
    /// Largest response message sent, in bytes.
    pub max_response_bytes: usize,
    /// Deadline for one call when the client sets none (or a longer one).
    #[serde(with = "secs")]
    pub call_timeout: Duration,
    /// Concurrent calls per connection.
    pub concurrency_per_connection: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_request_bytes: 1024 * 1024,
            max_response_bytes: 8 * 1024 * 1024,
            call_timeout: Duration::from_secs(30),
            concurrency_per_connection: 64,
        }
    }
}

/// How tokens are verified.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    /// Expected `iss`.
    pub issuer: String,
    /// Expected `aud`.
    pub audience: String,
    /// Allowed clock skew for `exp`/`nbf`.
    #[serde(with = "secs")]
    pub leeway: Duration,
    /// Least time between two JWKS fetch attempts.
    #[serde(with = "secs")]
    pub jwks_refresh_interval: Duration,
    /// Longest a fetched JWK set (keys and revocations) is used: refreshed
    /// from half this age on, refused past it (fail closed). The bound within
    /// which a retired key, a disabled user or a revoked service account stops
    /// working in every service.
    #[serde(with = "secs")]
    pub jwks_max_age: Duration,
    /// The identity service's address, to fetch the JWKS from (microservices mode).
    pub identity_url: Option<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            issuer: "https://schakel.local/identity".into(),
            audience: "schakel".into(),
            leeway: Duration::from_secs(30),
            jwks_refresh_interval: Duration::from_secs(10),
            jwks_max_age: Duration::from_secs(60),
            identity_url: None,
        }
    }
}

impl AuthConfig {
    /// Checks the settings before anything starts.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.jwks_max_age >= Duration::from_secs(2),
            "auth.jwks_max_age must be at least 2 seconds"
        );
        anyhow::ensure!(
            self.jwks_refresh_interval * 2 <= self.jwks_max_age,
            "auth.jwks_refresh_interval must be at most half of auth.jwks_max_age \
             (a set is refreshed from half its age on)"
        );
        Ok(())
    }
}

/// Serialises a [`Duration`] as whole seconds.
pub mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises as seconds.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    /// Deserialises from seconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closure signature
mod tests {
    use super::*;

    #[derive(Default, Serialize, Deserialize)]
    struct Sample {
        server: ServerConfig,
        database_url: String,
    }

    #[test]
    fn file_then_env_override_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "schakel.toml",
                "database_url = \"sqlite://x.db\"\n[server]\nlisten = \"0.0.0.0:1\"\n",
            )?;
            jail.set_env("SCHAKEL_SERVER__LIMITS__MAX_REQUEST_BYTES", "77");
            let c: Sample = load(Some(std::path::Path::new("schakel.toml"))).expect("loads");
            assert_eq!(c.database_url, "sqlite://x.db");
            assert_eq!(c.server.listen.port(), 1);
            assert_eq!(c.server.limits.max_request_bytes, 77);
            assert_eq!(c.server.limits.call_timeout, Duration::from_secs(30));
            Ok(())
        });
    }

    #[test]
    fn bad_values_are_one_line() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("SCHAKEL_SERVER__LISTEN", "not an address");
            let err = load::<Sample>(None).err().expect("fails");
            assert!(!err.to_string().contains('\n'));
            assert!(err.to_string().to_lowercase().contains("listen"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn missing_file_is_an_error() {
        let err = load::<Sample>(Some(std::path::Path::new("/nonexistent/schakel.toml")));
        assert!(err.is_err());
    }
}
