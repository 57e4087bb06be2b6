//! The grants of IssueToken: password, client secret and client
//! certificate, each attempt counted against the account and peer limits
//! before its secret is checked.

use schakel_kit::auth::{Confirmation, PrincipalKind, Role};
use schakel_proto::v1 as pb;

use crate::{
    Identity,
    error::{Error, Result},
    service::{INTERNAL_PREFIX, MAX_SECRET_BYTES},
    store,
    token::Principal,
};

impl Identity {
    /// Counts an attempt for the account and the peer before the secret is
    /// hashed (so concurrent guesses cannot all pass the limit).
    pub(crate) fn count_attempt(&self, account_key: &str, peer_key: &str) -> Result<()> {
        let limited = |retry: std::time::Duration| Error::RateLimited {
            retry_after_secs: retry.as_secs().max(1),
        };
        self.inner
            .peer_failures
            .attempt(peer_key)
            .map_err(limited)?;
        if let Err(retry) = self.inner.account_failures.attempt(account_key) {
            self.inner.peer_failures.forgive(peer_key);
            return Err(limited(retry));
        }
        Ok(())
    }

    /// Checks a secret after [`Self::count_attempt`]: a match forgives the
    /// attempt (the account's failures are forgotten).
    pub(crate) async fn verify_counted(
        &self,
        (account_key, peer_key): (&str, &str),
        secret: String,
        hash: Option<String>,
    ) -> Result<()> {
        let matched = self.inner.hasher.verify(secret, hash).await;
        match matched {
            Ok(true) => {
                self.inner.account_failures.reset(account_key);
                self.inner.peer_failures.forgive(peer_key);
                Ok(())
            }
            Ok(false) => Err(Error::BadCredentials),
            Err(crate::password::Busy) => {
                // Not a guess: it was never checked.
                self.inner.account_failures.forgive(account_key);
                self.inner.peer_failures.forgive(peer_key);
                Err(Error::Busy)
            }
        }
    }

    pub(crate) async fn organisation_principal(
        &self,
        subject: String,
        kind: PrincipalKind,
        org_id: &str,
        roles: Vec<i32>,
    ) -> Result<Principal> {
        let org = store::get_organisation(self.inner.db.pool(), org_id)
            .await?
            .ok_or_else(|| {
                Error::Internal(anyhow::anyhow!("principal's organisation is missing"))
            })?;
        let roles: Vec<Role> = roles.into_iter().filter_map(Role::from_proto).collect();
        // An account from before the separation of duties was enforced.
        Role::check_separation(&roles).map_err(|message| Error::Precondition {
            reason: "ROLE_CONFLICT",
            message,
        })?;
        Ok(Principal {
            subject,
            kind,
            organisation_id: org.id,
            partner_type: org.partner_type,
            region: org.region,
            roles,
            bound_to: None,
            revoked_until: None,
        })
    }

    pub(crate) async fn password_grant(
        &self,
        grant: pb::PasswordGrant,
        peer: &str,
    ) -> Result<Principal> {
        if grant.username.len() > 256 {
            return Err(Error::invalid("password.username", "at most 256 bytes"));
        }
        if grant.password.len() > MAX_SECRET_BYTES {
            return Err(Error::invalid("password.password", "too long"));
        }
        let (account_key, peer_key) = (format!("user:{}", grant.username), format!("peer:{peer}"));
        self.count_attempt(&account_key, &peer_key)?;
        let record = store::user_credentials(self.inner.db.pool(), &grant.username).await?;
        let (user, hash) = match record {
            Some((user, hash)) if !user.disabled && !user.pending_approval => {
                (Some(user), Some(hash))
            }
            // Disabled, awaiting approval or unknown: same work, same answer.
            _ => (None, None),
        };
        self.verify_counted((&account_key, &peer_key), grant.password, hash)
            .await?;
        let user = user.ok_or(Error::BadCredentials)?;
        self.organisation_principal(
            user.id,
            PrincipalKind::User,
            &user.organisation_id,
            user.roles,
        )
        .await
    }

    pub(crate) async fn client_secret_grant(
        &self,
        grant: pb::ClientCredentialsGrant,
        peer: &str,
    ) -> Result<Principal> {
        if grant.client_id.len() > 256 {
            return Err(Error::invalid(
                "client_credentials.client_id",
                "at most 256 bytes",
            ));
        }
        if grant.client_secret.len() > MAX_SECRET_BYTES {
            return Err(Error::invalid(
                "client_credentials.client_secret",
                "too long",
            ));
        }
        let (account_key, peer_key) = (
            format!("client:{}", grant.client_id),
            format!("peer:{peer}"),
        );
        self.count_attempt(&account_key, &peer_key)?;
        let record = store::find_service_account(self.inner.db.pool(), &grant.client_id).await?;
        let (account, hash, revoked_at) = match record {
            Some(r) if !r.disabled && r.secret_hash.is_some() => {
                (Some(r.account), r.secret_hash, r.revoked_at)
            }
            _ => (None, None, None),
        };
        self.verify_counted((&account_key, &peer_key), grant.client_secret, hash)
            .await?;
        let account = account.ok_or(Error::BadCredentials)?;
        let mut principal = self
            .organisation_principal(
                account.id,
                PrincipalKind::ServiceAccount,
                &account.organisation_id,
                account.roles,
            )
            .await?;
        principal.revoked_until = revoked_at;
        Ok(principal)
    }

    pub(crate) async fn certificate_grant(
        &self,
        grant: pb::ClientCertificateGrant,
        certificate: Option<&[u8]>,
        peer: &str,
    ) -> Result<Principal> {
        // Refused certificate grants count against the peer like guesses.
        let peer_key = format!("peer:{peer}");
        self.inner
            .peer_failures
            .attempt(&peer_key)
            .map_err(|retry| Error::RateLimited {
                retry_after_secs: retry.as_secs().max(1),
            })?;
        let principal = self.certificate_principal(grant, certificate).await;
        if principal.is_ok() {
            self.inner.peer_failures.forgive(&peer_key);
        }
        principal
    }

    pub(crate) async fn certificate_principal(
        &self,
        grant: pb::ClientCertificateGrant,
        certificate: Option<&[u8]>,
    ) -> Result<Principal> {
        // rustls has verified the certificate chain against the deployment CA;
        // the account must name this certificate's subject, and the token is
        // bound to this certificate (RFC 8705).
        let certificate = certificate.ok_or(Error::BadCredentials)?;
        let common_name =
            schakel_kit::tls::common_name(certificate).ok_or(Error::BadCredentials)?;
        let bound_to = Some(Confirmation::of_certificate(certificate));
        // One of Schakel's own services, known by its certificate.
        if let Some(service) = grant.client_id.strip_prefix(INTERNAL_PREFIX) {
            if service == common_name
                && self
                    .inner
                    .config
                    .internal_services
                    .iter()
                    .any(|s| s == service)
            {
                return Ok(Principal {
                    subject: grant.client_id.clone(),
                    kind: PrincipalKind::InternalService,
                    organisation_id: String::new(),
                    partner_type: String::new(),
                    region: String::new(),
                    roles: Vec::new(),
                    bound_to,
                    revoked_until: None,
                });
            }
            return Err(Error::BadCredentials);
        }
        let record = store::find_service_account(self.inner.db.pool(), &grant.client_id).await?;
        let (account, revoked_at) = match record {
            Some(r)
                if !r.disabled
                    && !r.account.certificate_subject.is_empty()
                    && r.account.certificate_subject == common_name =>
            {
                (r.account, r.revoked_at)
            }
            _ => return Err(Error::BadCredentials),
        };
        let mut principal = self
            .organisation_principal(
                account.id,
                PrincipalKind::ServiceAccount,
                &account.organisation_id,
                account.roles,
            )
            .await?;
        principal.bound_to = bound_to;
        principal.revoked_until = revoked_at;
        Ok(principal)
    }
}
