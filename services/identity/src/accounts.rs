//! Service accounts of partner systems: create, list, disable, new secret.
//! Disabling and a new secret void the tokens already issued.

use schakel_kit::{
    auth::{Caller, Role},
    time::to_timestamp,
};
use schakel_proto::v1 as pb;

use crate::{
    Identity,
    error::{Error, Result},
    model,
    password::generate_secret,
    service::{next_token, target},
    store,
};

impl Identity {
    /// CreateServiceAccount by `caller` (a coordinator).
    pub(crate) async fn create_service_account_by(
        &self,
        caller: &Caller,
        req: pb::CreateServiceAccountRequest,
    ) -> Result<pb::CreateServiceAccountResponse> {
        let name = model::label("name", &req.name)?;
        let roles = model::roles("roles", &req.roles)?;
        if let Some(role) = roles
            .iter()
            .find(|r| !matches!(r, Role::Aanmelder | Role::TeamMember))
        {
            return Err(Error::invalid(
                "roles",
                format!("a partner system cannot hold the role {role}"),
            ));
        }
        let subject = req.certificate_subject.trim().to_owned();
        if !subject.is_empty() && !model::is_common_name(&subject) {
            return Err(Error::invalid(
                "certificate_subject",
                "must be a certificate common name of [A-Za-z0-9._-], at most 64",
            ));
        }
        if self.inner.config.internal_services.contains(&subject) {
            return Err(Error::invalid(
                "certificate_subject",
                "is the certificate name of one of Schakel's own services",
            ));
        }
        if subject.is_empty() && !req.generate_secret {
            return Err(Error::invalid(
                "certificate_subject",
                "give a certificate subject, or set generate_secret",
            ));
        }
        let org = self
            .require_organisation("organisation_id", &req.organisation_id)
            .await?;
        let secret = req.generate_secret.then(|| generate_secret(40));
        let hash = match &secret {
            Some(s) => Some(self.inner.hash(s.clone()).await?),
            None => None,
        };
        let now = self.inner.clock_now();
        let account = pb::ServiceAccount {
            id: uuid::Uuid::new_v4().to_string(),
            client_id: format!("sa-{}", generate_secret(20).to_lowercase()),
            name,
            organisation_id: org.id,
            roles: roles.iter().map(|r| r.to_proto() as i32).collect(),
            certificate_subject: subject,
            created_at: Some(to_timestamp(now)),
            disabled: false,
            has_secret: secret.is_some(),
        };
        let mut tx = self.begin().await?;
        store::insert_service_account(&mut tx, &account, &roles, hash.as_deref(), now).await?;
        let role_codes = model::roles_to_text(&roles).replace(',', "+");
        self.stage(
            &mut tx,
            caller.to_actor(),
            pb::AuditAction::ServiceAccountCreate,
            target(&account.organisation_id, &account.id),
            &[("roles", &role_codes)],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(service_account = %account.id, by = %caller.subject, "service account created");
        Ok(pb::CreateServiceAccountResponse {
            service_account: Some(account),
            client_secret: secret.unwrap_or_default(),
        })
    }

    /// ListServiceAccounts.
    pub(crate) async fn list_service_accounts_page(
        &self,
        req: &pb::ListServiceAccountsRequest,
    ) -> Result<pb::ListServiceAccountsResponse> {
        let (limit, after) = model::page(req.page.as_ref())?;
        let organisation_id = if req.organisation_id.is_empty() {
            String::new()
        } else {
            model::id("organisation_id", &req.organisation_id)?
        };
        let mut service_accounts =
            store::list_service_accounts(self.inner.db.pool(), &organisation_id, &after, limit + 1)
                .await?;
        let next_page_token = next_token(&mut service_accounts, limit, |a| &a.id);
        Ok(pb::ListServiceAccountsResponse {
            service_accounts,
            next_page_token,
        })
    }

    /// DisableServiceAccount by `caller`.
    pub(crate) async fn disable_service_account_by(
        &self,
        caller: &Caller,
        req: &pb::DisableServiceAccountRequest,
    ) -> Result<pb::ServiceAccount> {
        let id = model::id("service_account_id", &req.service_account_id)?;
        model::reason("reason", &req.reason)?;
        let account = self.require_service_account(&id).await?;
        let mut tx = self.begin().await?;
        if !store::disable_service_account(&mut tx, &id, self.inner.clock_now()).await? {
            return Err(Error::NotFound("service account"));
        }
        self.stage(
            &mut tx,
            caller.to_actor(),
            pb::AuditAction::ServiceAccountDisable,
            target(&account.organisation_id, &id),
            &[],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(service_account = %id, by = %caller.subject, "service account disabled");
        self.require_service_account(&id).await
    }

    /// ResetServiceAccountSecret by `caller`: the new secret, shown once.
    pub(crate) async fn reset_service_account_secret_by(
        &self,
        caller: &Caller,
        req: &pb::ResetServiceAccountSecretRequest,
    ) -> Result<pb::ResetServiceAccountSecretResponse> {
        let id = model::id("service_account_id", &req.service_account_id)?;
        let account = self.require_service_account(&id).await?;
        if account.disabled {
            return Err(Error::Precondition {
                reason: "DISABLED",
                message: "the service account is disabled".into(),
            });
        }
        let secret = generate_secret(40);
        let hash = self.inner.hash(secret.clone()).await?;
        let mut tx = self.begin().await?;
        let now = self.inner.clock_now();
        if !store::reset_service_account_secret(&mut tx, &id, &hash, now).await? {
            return Err(Error::Precondition {
                reason: "DISABLED",
                message: "the service account is disabled".into(),
            });
        }
        self.stage(
            &mut tx,
            caller.to_actor(),
            pb::AuditAction::CredentialReset,
            target(&account.organisation_id, &id),
            &[("credential", "client_secret")],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(service_account = %id, by = %caller.subject, "service account secret reset");
        Ok(pb::ResetServiceAccountSecretResponse {
            service_account: Some(self.require_service_account(&id).await?),
            client_secret: secret,
        })
    }

    async fn require_service_account(&self, id: &str) -> Result<pb::ServiceAccount> {
        store::get_service_account(self.inner.db.pool(), id)
            .await?
            .ok_or(Error::NotFound("service account"))
    }
}
