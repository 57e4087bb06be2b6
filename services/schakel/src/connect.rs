//! How the CLI reaches a server and authenticates.

use std::path::PathBuf;

use anyhow::Context;
use schakel_kit::client::CallContext;
use schakel_proto::v1::{
    self as pb, audit_service_client::AuditServiceClient,
    broker_service_client::BrokerServiceClient, identity_service_client::IdentityServiceClient,
    issue_token_request::Grant, legal_basis_service_client::LegalBasisServiceClient,
    policy_service_client::PolicyServiceClient,
};
use tonic::{service::interceptor::InterceptedService, transport::Channel};

/// Connection options shared by every admin command.
#[derive(clap::Args, Clone)]
pub struct Connection {
    /// Server URL.
    #[arg(
        long,
        global = true,
        env = "SCHAKEL_URL",
        default_value = "https://127.0.0.1:50051"
    )]
    url: String,
    /// CA certificate (PEM) that signed the server's certificate.
    #[arg(
        long,
        global = true,
        env = "SCHAKEL_CA_CERT",
        default_value = "./schakel-data/tls/ca.pem"
    )]
    ca_cert: PathBuf,
    /// Client certificate (PEM) for mTLS.
    #[arg(
        long,
        global = true,
        env = "SCHAKEL_CLIENT_CERT",
        requires = "client_key"
    )]
    client_cert: Option<PathBuf>,
    /// Key of the client certificate.
    #[arg(
        long,
        global = true,
        env = "SCHAKEL_CLIENT_KEY",
        requires = "client_cert"
    )]
    client_key: Option<PathBuf>,
    /// Access token; when absent, one is obtained with the credentials below.
    #[arg(long, global = true, env = "SCHAKEL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// User name to log in with (distinct from commands' own `--username`).
    #[arg(
        id = "login_user",
        long = "user",
        global = true,
        env = "SCHAKEL_USERNAME"
    )]
    username: Option<String>,
    /// Password to log in with (prefer the environment variable to the flag).
    #[arg(
        id = "login_password",
        long = "password",
        global = true,
        env = "SCHAKEL_PASSWORD",
        hide_env_values = true
    )]
    password: Option<String>,
    /// Service-account client id (with a secret, or with the client certificate).
    #[arg(long, global = true, env = "SCHAKEL_CLIENT_ID")]
    client_id: Option<String>,
    /// Service-account client secret.
    #[arg(
        long,
        global = true,
        env = "SCHAKEL_CLIENT_SECRET",
        hide_env_values = true
    )]
    client_secret: Option<String>,
}

/// An identity client whose calls carry the token (if any).
pub type Identity = IdentityServiceClient<InterceptedService<Channel, CallContext>>;

/// An audit client whose calls carry the token (if any).
pub type Audit = AuditServiceClient<InterceptedService<Channel, CallContext>>;

/// A legal-basis client with the call context.
pub type LegalBasis = LegalBasisServiceClient<InterceptedService<Channel, CallContext>>;

/// A broker client with the call context.
pub type Broker = schakel_broker::Client;

/// A policy client with the call context.
pub type Policy = PolicyServiceClient<InterceptedService<Channel, CallContext>>;

impl Connection {
    /// A TLS channel to the server.
    pub fn channel(&self) -> anyhow::Result<Channel> {
        let client = self.client_cert.as_deref().zip(self.client_key.as_deref());
        let tls = schakel_kit::tls::client_config(&self.ca_cert, client).with_context(|| {
            format!(
                "CA certificate {} (set --ca-cert or SCHAKEL_CA_CERT)",
                self.ca_cert.display()
            )
        })?;
        schakel_kit::client::channel(&self.url, tls)
    }

    /// The grant the credentials describe, if any.
    pub fn grant(&self) -> Option<Grant> {
        match (
            &self.username,
            &self.password,
            &self.client_id,
            &self.client_secret,
        ) {
            (Some(username), Some(password), _, _) => Some(Grant::Password(pb::PasswordGrant {
                username: username.clone(),
                password: password.clone(),
            })),
            (_, _, Some(client_id), Some(secret)) => {
                Some(Grant::ClientCredentials(pb::ClientCredentialsGrant {
                    client_id: client_id.clone(),
                    client_secret: secret.clone(),
                }))
            }
            (_, _, Some(client_id), None) if self.client_cert.is_some() => {
                Some(Grant::ClientCertificate(pb::ClientCertificateGrant {
                    client_id: client_id.clone(),
                }))
            }
            _ => None,
        }
    }

    /// Obtains a token with the configured credentials.
    pub async fn issue_token(&self, channel: Channel) -> anyhow::Result<pb::IssueTokenResponse> {
        let grant = self.grant().context(
            "no credentials: set SCHAKEL_USERNAME and SCHAKEL_PASSWORD (or --client-id with a secret or client certificate)",
        )?;
        let mut client = IdentityServiceClient::new(channel);
        let response = client
            .issue_token(pb::IssueTokenRequest {
                grant: Some(grant),
                ttl_seconds: 0,
            })
            .await
            .map_err(anyhow::Error::new)?;
        Ok(response.into_inner())
    }

    /// The token to call with: the given one, or a fresh one.
    pub async fn token(&self, channel: Channel) -> anyhow::Result<Option<String>> {
        if let Some(token) = &self.token {
            return Ok(Some(token.clone()));
        }
        if self.grant().is_none() {
            return Ok(None);
        }
        Ok(Some(self.issue_token(channel).await?.access_token))
    }

    /// An authenticated identity client.
    pub async fn identity(&self) -> anyhow::Result<Identity> {
        let channel = self.channel()?;
        let token = self.token(channel.clone()).await?;
        Ok(IdentityServiceClient::with_interceptor(
            channel,
            CallContext::with_token(token),
        ))
    }

    /// An authenticated audit client.
    pub async fn audit(&self) -> anyhow::Result<Audit> {
        let channel = self.channel()?;
        let token = self.token(channel.clone()).await?;
        Ok(
            AuditServiceClient::with_interceptor(channel, CallContext::with_token(token))
                .max_decoding_message_size(64 * 1024 * 1024),
        )
    }

    /// An authenticated legal-basis client.
    pub async fn legal_basis(&self) -> anyhow::Result<LegalBasis> {
        let channel = self.channel()?;
        let token = self.token(channel.clone()).await?;
        Ok(LegalBasisServiceClient::with_interceptor(
            channel,
            CallContext::with_token(token),
        ))
    }

    /// An authenticated policy client.
    pub async fn policy(&self) -> anyhow::Result<Policy> {
        let channel = self.channel()?;
        let token = self.token(channel.clone()).await?;
        Ok(
            PolicyServiceClient::with_interceptor(channel, CallContext::with_token(token))
                .max_decoding_message_size(64 * 1024 * 1024),
        )
    }

    /// An authenticated broker client.
    pub async fn broker(&self) -> anyhow::Result<Broker> {
        let channel = self.channel()?;
        let token = self.token(channel.clone()).await?;
        Ok(
            BrokerServiceClient::with_interceptor(channel, CallContext::with_token(token))
                .max_decoding_message_size(64 * 1024 * 1024),
        )
    }
}
