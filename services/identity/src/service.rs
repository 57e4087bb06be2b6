//! The `IdentityService` RPCs.

use std::sync::Arc;

use schakel_kit::{
    audit::AuditSink,
    auth::{Caller, PrincipalKind, Role},
    config::AuthConfig,
    db::Database,
    outbox::{Change, Outbox},
    time::{Clock, to_timestamp},
    tls::peer_certificate,
};
use schakel_proto::v1::{
    self as pb, identity_service_server::IdentityService, issue_token_request::Grant,
};
use tonic::{Request, Response, Status};

use crate::{
    Identity, IdentityConfig, MasterKey,
    error::{Error, Result},
    kbo::KboNumber,
    keys::KeyStore,
    model,
    password::Hasher,
    ratelimit::{FailureLimiter, RefusalDigest},
    store, token,
};

/// Longest secret accepted, so that hashing cannot be used for denial of service.
pub(crate) const MAX_SECRET_BYTES: usize = 1024;
/// Client ids of Schakel's own services: `svc-<certificate common name>`.
pub(crate) const INTERNAL_PREFIX: &str = schakel_kit::auth::INTERNAL_SUBJECT_PREFIX;
/// How long a revocation stays published beyond the longest token lifetime
/// and the verifiers' leeway (after that every token it voids has expired).
pub(crate) const REVOCATION_MARGIN_SECS: i64 = 60;

pub(crate) struct Inner {
    pub(crate) db: Database,
    pub(crate) keys: KeyStore,
    pub(crate) hasher: Hasher,
    clock: Clock,
    pub(crate) config: IdentityConfig,
    pub(crate) auth: AuthConfig,
    pub(crate) account_failures: FailureLimiter,
    pub(crate) peer_failures: FailureLimiter,
    refusals: RefusalDigest,
    pub(crate) outbox: Outbox,
    /// Nudged after a key rotation: identity's own service token is renewed
    /// at once (see [`Identity::internal_token`](crate::Identity::internal_token)).
    pub(crate) rotated: Arc<tokio::sync::Notify>,
}

impl Inner {
    pub(crate) fn new(
        db: Database,
        config: IdentityConfig,
        auth: AuthConfig,
        master: MasterKey,
        clock: Clock,
        audit: Arc<dyn AuditSink>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            keys: KeyStore::new(db.clone(), master, clock.clone()),
            hasher: Hasher::new(&config.password_hash)?,
            account_failures: FailureLimiter::new(
                config.max_failures_per_account,
                config.failure_window,
            ),
            peer_failures: FailureLimiter::new(config.max_failures_per_peer, config.failure_window),
            refusals: RefusalDigest::new(config.failure_window),
            outbox: Outbox::new(&db, audit),
            rotated: Arc::default(),
            db,
            clock,
            config,
            auth,
        })
    }
}

impl Inner {
    pub(crate) fn clock_now(&self) -> i64 {
        self.clock.now()
    }

    pub(crate) async fn hash(&self, secret: String) -> anyhow::Result<String> {
        self.hasher.hash(secret).await
    }
}

/// An administrative change's target: the organisation and the object acted on.
pub(crate) fn target(organisation_id: &str, resource_id: &str) -> pb::AuditTarget {
    pb::AuditTarget {
        organisation_id: organisation_id.into(),
        resource_id: resource_id.into(),
        ..Default::default()
    }
}

impl Identity {
    /// Appends the entry of a decision that changes nothing (a token
    /// issued, a login refused) before its reply.
    pub(crate) async fn record(
        &self,
        actor: pb::Actor,
        action: pb::AuditAction,
        decision: pb::Decision,
        target: pb::AuditTarget,
        attributes: &[(&str, &str)],
    ) -> Result<()> {
        let mut entry = schakel_kit::audit::entry(actor, action, decision, "identity", attributes);
        entry.target = Some(target);
        self.inner
            .outbox
            .append_now(entry)
            .await
            .map_err(Error::Audit)?;
        Ok(())
    }

    /// Stages the entry of a change by `actor` in its transaction: it
    /// reaches the log if and only if the change commits.
    pub(crate) async fn stage(
        &self,
        tx: &mut Change,
        actor: pb::Actor,
        action: pb::AuditAction,
        target: pb::AuditTarget,
        attributes: &[(&str, &str)],
    ) -> Result<()> {
        let mut entry =
            schakel_kit::audit::entry(actor, action, pb::Decision::Granted, "identity", attributes);
        entry.target = Some(target);
        tx.record(entry).await?;
        Ok(())
    }

    /// A change: its entries commit with it (see [`schakel_kit::outbox`]).
    pub(crate) async fn begin(&self) -> Result<Change> {
        Ok(self.inner.outbox.begin().await?)
    }

    fn ttl(&self, requested: u32) -> Result<i64> {
        let max = self.inner.config.max_token_ttl.as_secs();
        match u64::from(requested) {
            0 => Ok(self.inner.config.default_token_ttl.as_secs() as i64),
            t if t <= max => Ok(t as i64),
            _ => Err(Error::invalid(
                "ttl_seconds",
                format!("must be at most {max}"),
            )),
        }
    }

    pub(crate) async fn require_organisation(
        &self,
        field: &'static str,
        id: &str,
    ) -> Result<pb::Organisation> {
        let id = model::id(field, id)?;
        store::get_organisation(self.inner.db.pool(), &id)
            .await?
            .ok_or(Error::NotFound("organisation"))
    }

    fn coordinator<T>(request: &Request<T>) -> std::result::Result<Caller, Status> {
        let caller = Caller::of(request)?;
        caller.require_role(Role::Coordinator)?;
        Ok(caller.clone())
    }
}

pub(crate) fn next_token<T>(items: &mut Vec<T>, limit: i64, id: impl Fn(&T) -> &str) -> String {
    if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|i| id(i).to_owned()).unwrap_or_default()
    } else {
        String::new()
    }
}

#[tonic::async_trait]
impl IdentityService for Identity {
    async fn issue_token(
        &self,
        request: Request<pb::IssueTokenRequest>,
    ) -> std::result::Result<Response<pb::IssueTokenResponse>, Status> {
        let peer = request
            .remote_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        let certificate = peer_certificate(&request);
        let req = request.into_inner();
        let ttl = self.ttl(req.ttl_seconds)?;
        let grant_kind = match &req.grant {
            None => {
                return Err(Error::invalid(
                    "grant",
                    "one of password, client_credentials, client_certificate is required",
                )
                .into());
            }
            Some(Grant::Password(_)) => "password",
            Some(Grant::ClientCredentials(_)) => "client_credentials",
            Some(Grant::ClientCertificate(_)) => "client_certificate",
        };
        let granted = match req.grant {
            Some(Grant::Password(g)) => self.password_grant(g, &peer).await,
            Some(Grant::ClientCredentials(g)) => self.client_secret_grant(g, &peer).await,
            Some(Grant::ClientCertificate(g)) => {
                self.certificate_grant(g, certificate.as_deref(), &peer)
                    .await
            }
            None => Err(Error::BadCredentials),
        };
        let principal = match granted {
            Ok(principal) => principal,
            Err(err @ (Error::BadCredentials | Error::RateLimited { .. })) => {
                // Best effort: a refused login is refused even if it cannot be logged.
                let anonymous = pb::Actor {
                    subject: "unauthenticated".into(),
                    ..Default::default()
                };
                let reason = if matches!(err, Error::BadCredentials) {
                    "INVALID_CREDENTIALS"
                } else {
                    "TOO_MANY_ATTEMPTS"
                };
                // One entry per grant, reason and peer per window, with
                // the count it stands for: a flood adds a bounded number.
                let key = format!("{grant_kind}:{reason}:{peer}");
                let Some(count) = self.inner.refusals.note(&key) else {
                    return Err(err.into());
                };
                let count = count.to_string();
                let attributes = [("grant", grant_kind), ("reason", reason), ("count", &count)];
                if let Err(e) = self
                    .record(
                        anonymous,
                        pb::AuditAction::AuthenticationFail,
                        pb::Decision::Denied,
                        target("", ""),
                        &attributes,
                    )
                    .await
                {
                    tracing::warn!(error = %e, "failed login not audited");
                }
                return Err(err.into());
            }
            Err(err) => return Err(err.into()),
        };
        let actor = pb::Actor {
            subject: principal.subject.clone(),
            kind: principal.kind.to_proto() as i32,
            organisation_id: principal.organisation_id.clone(),
            partner_type: principal.partner_type.clone(),
            roles: principal
                .roles
                .iter()
                .map(|r| r.to_proto() as i32)
                .collect(),
        };
        let now = self.inner.clock.now();
        let signed = token::sign(
            &self.inner.keys,
            &self.inner.auth.issuer,
            &self.inner.auth.audience,
            principal,
            now,
            ttl,
        )
        .await
        .map_err(Error::Internal)?;
        let ttl_text = ttl.to_string();
        let t = target(&actor.organisation_id, &signed.claims.jti);
        self.record(
            actor,
            pb::AuditAction::TokenIssue,
            pb::Decision::Granted,
            t,
            &[("grant", grant_kind), ("ttl", &ttl_text)],
        )
        .await?;
        tracing::info!(subject = %signed.claims.sub, kind = %signed.claims.knd, jti = %signed.claims.jti, "token issued");
        Ok(Response::new(pb::IssueTokenResponse {
            access_token: signed.token,
            token_type: "Bearer".into(),
            expires_in: ttl as u32,
            expires_at: Some(to_timestamp(signed.claims.exp)),
        }))
    }

    async fn get_jwks(
        &self,
        _request: Request<pb::GetJwksRequest>,
    ) -> std::result::Result<Response<pb::GetJwksResponse>, Status> {
        let jwks = self.published().await?;
        let jwks_json = serde_json::to_string(&jwks).map_err(|e| Error::Internal(e.into()))?;
        Ok(Response::new(pb::GetJwksResponse { jwks_json }))
    }

    async fn who_am_i(
        &self,
        request: Request<pb::WhoAmIRequest>,
    ) -> std::result::Result<Response<pb::WhoAmIResponse>, Status> {
        let caller = Caller::of(&request)?;
        let display_name = match caller.kind {
            PrincipalKind::User => store::get_user(self.inner.db.pool(), &caller.subject)
                .await?
                .map(|u| u.display_name),
            _ => None,
        };
        Ok(Response::new(pb::WhoAmIResponse {
            actor: Some(caller.to_actor()),
            region: caller.region.clone(),
            display_name: display_name.unwrap_or_default(),
            expires_at: Some(to_timestamp(caller.expires_at)),
            token_id: caller.token_id.clone(),
        }))
    }

    async fn create_organisation(
        &self,
        request: Request<pb::CreateOrganisationRequest>,
    ) -> std::result::Result<Response<pb::CreateOrganisationResponse>, Status> {
        let caller = Self::coordinator(&request)?;
        let req = request.into_inner();
        let name = model::label("name", &req.name)?;
        let partner_type = model::partner_type_code("partner_type", &req.partner_type)?;
        let region = model::region("region", &req.region)?;
        let kbo = KboNumber::parse(&req.kbo_number).map_err(|m| Error::invalid("kbo_number", m))?;
        if !store::partner_type_exists(self.inner.db.pool(), &partner_type).await? {
            return Err(Error::invalid(
                "partner_type",
                format!("unknown partner type {partner_type}"),
            )
            .into());
        }
        let now = self.inner.clock.now();
        let organisation = pb::Organisation {
            id: uuid::Uuid::new_v4().to_string(),
            name,
            partner_type,
            region,
            kbo_number: kbo.to_string(),
            created_at: Some(to_timestamp(now)),
        };
        let mut tx = self.begin().await?;
        store::insert_organisation(&mut tx, &organisation, now).await?;
        let t = target(&organisation.id, &organisation.id);
        let ptype = organisation.partner_type.as_str();
        self.stage(
            &mut tx,
            caller.to_actor(),
            pb::AuditAction::OrganisationCreate,
            t,
            &[("partner_type", ptype)],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(organisation = %organisation.id, by = %caller.subject, "organisation created");
        Ok(Response::new(pb::CreateOrganisationResponse {
            organisation: Some(organisation),
        }))
    }

    async fn list_organisations(
        &self,
        request: Request<pb::ListOrganisationsRequest>,
    ) -> std::result::Result<Response<pb::ListOrganisationsResponse>, Status> {
        Caller::of(&request)?;
        let req = request.into_inner();
        let (limit, after) = model::page(req.page.as_ref())?;
        if !req.partner_type.is_empty() {
            model::partner_type_code("partner_type", &req.partner_type)?;
        }
        if !req.region.is_empty() {
            model::region("region", &req.region)?;
        }
        let mut organisations = store::list_organisations(
            self.inner.db.pool(),
            &req.partner_type,
            &req.region,
            &after,
            limit + 1,
        )
        .await?;
        let next_page_token = next_token(&mut organisations, limit, |o| &o.id);
        Ok(Response::new(pb::ListOrganisationsResponse {
            organisations,
            next_page_token,
        }))
    }

    async fn create_partner_type(
        &self,
        request: Request<pb::CreatePartnerTypeRequest>,
    ) -> std::result::Result<Response<pb::CreatePartnerTypeResponse>, Status> {
        let caller = Self::coordinator(&request)?;
        let req = request.into_inner();
        let code = model::partner_type_code("code", &req.code)?;
        let description = model::label("description", &req.description)?;
        let partner_type = {
            let mut tx = self.begin().await?;
            let created = store::insert_partner_type(&mut tx, &code, &description).await?;
            self.stage(
                &mut tx,
                caller.to_actor(),
                pb::AuditAction::PartnerTypeCreate,
                target("", &code),
                &[],
            )
            .await?;
            tx.commit().await?;
            created
        };
        tracing::info!(partner_type = %code, by = %caller.subject, "partner type registered");
        Ok(Response::new(pb::CreatePartnerTypeResponse {
            partner_type: Some(partner_type),
        }))
    }

    async fn list_partner_types(
        &self,
        request: Request<pb::ListPartnerTypesRequest>,
    ) -> std::result::Result<Response<pb::ListPartnerTypesResponse>, Status> {
        Caller::of(&request)?;
        let partner_types = store::list_partner_types(self.inner.db.pool()).await?;
        Ok(Response::new(pb::ListPartnerTypesResponse {
            partner_types,
        }))
    }

    async fn create_user(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> std::result::Result<Response<pb::CreateUserResponse>, Status> {
        let caller = Self::coordinator(&request)?;
        let created = self.create_user_by(&caller, request.into_inner()).await?;
        Ok(Response::new(created))
    }

    async fn approve_user(
        &self,
        request: Request<pb::ApproveUserRequest>,
    ) -> std::result::Result<Response<pb::ApproveUserResponse>, Status> {
        let caller = Self::coordinator(&request)?;
        let user = self
            .approve_user_by(&caller, &request.get_ref().user_id)
            .await?;
        Ok(Response::new(pb::ApproveUserResponse { user: Some(user) }))
    }

    async fn disable_user(
        &self,
        request: Request<pb::DisableUserRequest>,
    ) -> std::result::Result<Response<pb::DisableUserResponse>, Status> {
        let caller = Self::coordinator(&request)?;
        let user = self.disable_user_by(&caller, request.get_ref()).await?;
        Ok(Response::new(pb::DisableUserResponse { user: Some(user) }))
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> std::result::Result<Response<pb::ListUsersResponse>, Status> {
        Self::coordinator(&request)?;
        let req = request.into_inner();
        let (limit, after) = model::page(req.page.as_ref())?;
        let organisation_id = if req.organisation_id.is_empty() {
            String::new()
        } else {
            model::id("organisation_id", &req.organisation_id)?
        };
        let mut users =
            store::list_users(self.inner.db.pool(), &organisation_id, &after, limit + 1).await?;
        let next_page_token = next_token(&mut users, limit, |u| &u.id);
        Ok(Response::new(pb::ListUsersResponse {
            users,
            next_page_token,
        }))
    }

    async fn get_user(
        &self,
        request: Request<pb::GetUserRequest>,
    ) -> std::result::Result<Response<pb::GetUserResponse>, Status> {
        let caller = Caller::of(&request)?;
        if caller.service() != Some("broker") {
            caller.require_role(Role::Coordinator)?;
        }
        let id = model::id("user_id", &request.get_ref().user_id)?;
        let user = store::get_user(self.inner.db.pool(), &id)
            .await?
            .ok_or(Error::NotFound("user"))?;
        Ok(Response::new(pb::GetUserResponse { user: Some(user) }))
    }

    async fn create_service_account(
        &self,
        request: Request<pb::CreateServiceAccountRequest>,
    ) -> std::result::Result<Response<pb::CreateServiceAccountResponse>, Status> {
        let caller = Self::coordinator(&request)?;
        let created = self
            .create_service_account_by(&caller, request.into_inner())
            .await?;
        Ok(Response::new(created))
    }

    async fn list_service_accounts(
        &self,
        request: Request<pb::ListServiceAccountsRequest>,
    ) -> std::result::Result<Response<pb::ListServiceAccountsResponse>, Status> {
        Self::coordinator(&request)?;
        Ok(Response::new(
            self.list_service_accounts_page(request.get_ref()).await?,
        ))
    }

    async fn disable_service_account(
        &self,
        request: Request<pb::DisableServiceAccountRequest>,
    ) -> std::result::Result<Response<pb::DisableServiceAccountResponse>, Status> {
        let caller = Self::coordinator(&request)?;
        let account = self
            .disable_service_account_by(&caller, request.get_ref())
            .await?;
        Ok(Response::new(pb::DisableServiceAccountResponse {
            service_account: Some(account),
        }))
    }

    async fn reset_service_account_secret(
        &self,
        request: Request<pb::ResetServiceAccountSecretRequest>,
    ) -> std::result::Result<Response<pb::ResetServiceAccountSecretResponse>, Status> {
        let caller = Self::coordinator(&request)?;
        Ok(Response::new(
            self.reset_service_account_secret_by(&caller, request.get_ref())
                .await?,
        ))
    }

    async fn rotate_signing_key(
        &self,
        request: Request<pb::RotateSigningKeyRequest>,
    ) -> std::result::Result<Response<pb::RotateSigningKeyResponse>, Status> {
        let caller = Self::coordinator(&request)?;
        let mut tx = self.begin().await?;
        let kid = self
            .inner
            .keys
            .rotate(&mut tx)
            .await
            .map_err(Error::Internal)?;
        self.stage(
            &mut tx,
            caller.to_actor(),
            pb::AuditAction::SigningKeyRotate,
            target("", &kid),
            &[],
        )
        .await?;
        tx.commit().await?;
        self.inner.rotated.notify_one();
        let published_kids = self
            .inner
            .keys
            .jwks()
            .await
            .map_err(Error::Internal)?
            .keys
            .into_iter()
            .map(|k| k.kid)
            .collect();
        tracing::info!(%kid, by = %caller.subject, "signing key rotated");
        Ok(Response::new(pb::RotateSigningKeyResponse {
            kid,
            published_kids,
        }))
    }
}
