//! Users: creation (oversight accounts wait for a second coordinator),
//! approval and disabling. Every change is audited in its transaction.

use schakel_kit::{auth::Caller, time::to_timestamp};
use schakel_proto::v1 as pb;

use crate::{
    Identity,
    error::{Error, Result},
    model,
    password::generate_secret,
    service::{MAX_SECRET_BYTES, target},
    store,
};

/// Shortest password a coordinator may set.
const MIN_PASSWORD_CHARS: usize = 12;

impl Identity {
    /// CreateUser by `caller` (a coordinator): the user and the generated
    /// password, if none was given. A user with an oversight role is created
    /// pending approval by a second coordinator.
    pub(crate) async fn create_user_by(
        &self,
        caller: &Caller,
        req: pb::CreateUserRequest,
    ) -> Result<pb::CreateUserResponse> {
        let username = model::username("username", &req.username)?;
        let display_name = model::label("display_name", &req.display_name)?;
        let roles = model::roles("roles", &req.roles)?;
        let (password, generated) = if req.password.is_empty() {
            let p = generate_secret(24);
            (p.clone(), p)
        } else if req.password.chars().count() < MIN_PASSWORD_CHARS
            || req.password.len() > MAX_SECRET_BYTES
        {
            return Err(Error::invalid(
                "password",
                format!("must be {MIN_PASSWORD_CHARS} to {MAX_SECRET_BYTES} characters"),
            ));
        } else {
            (req.password, String::new())
        };
        let org = self
            .require_organisation("organisation_id", &req.organisation_id)
            .await?;
        let hash = self.inner.hash(password).await?;
        let now = self.inner.clock_now();
        let pending = roles.iter().any(|r| r.is_oversight());
        let user = pb::User {
            id: uuid::Uuid::new_v4().to_string(),
            username,
            display_name,
            organisation_id: org.id,
            roles: roles.iter().map(|r| r.to_proto() as i32).collect(),
            disabled: false,
            created_at: Some(to_timestamp(now)),
            pending_approval: pending,
            created_by: caller.subject.clone(),
            approved_by: String::new(),
        };
        let mut tx = self.begin().await?;
        store::insert_user(&mut tx, &user, &roles, &hash, now).await?;
        let role_codes = model::roles_to_text(&roles).replace(',', "+");
        let pending_text = pending.to_string();
        self.stage(
            &mut tx,
            caller.to_actor(),
            pb::AuditAction::UserCreate,
            target(&user.organisation_id, &user.id),
            &[("roles", &role_codes), ("pending_approval", &pending_text)],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(user = %user.id, by = %caller.subject, pending, "user created");
        Ok(pb::CreateUserResponse {
            user: Some(user),
            generated_password: generated,
        })
    }

    /// ApproveUser by `caller`: four-eyes on oversight accounts. Neither the
    /// coordinator who created the user nor the user may approve.
    pub(crate) async fn approve_user_by(&self, caller: &Caller, user_id: &str) -> Result<pb::User> {
        let id = model::id("user_id", user_id)?;
        let user = store::get_user(self.inner.db.pool(), &id)
            .await?
            .ok_or(Error::NotFound("user"))?;
        if !user.pending_approval {
            return Err(Error::Precondition {
                reason: "NOT_PENDING",
                message: "the user is not waiting for approval".into(),
            });
        }
        if user.created_by == caller.subject || user.id == caller.subject {
            return Err(Error::PermissionDenied {
                reason: "FOUR_EYES",
                message: "a coordinator other than the one who created the user must approve"
                    .into(),
            });
        }
        let mut tx = self.begin().await?;
        if !store::approve_user(&mut tx, &id, &caller.subject).await? {
            return Err(Error::Precondition {
                reason: "NOT_PENDING",
                message: "the user is no longer waiting for approval".into(),
            });
        }
        self.stage(
            &mut tx,
            caller.to_actor(),
            pb::AuditAction::UserApprove,
            target(&user.organisation_id, &id),
            &[],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(user = %id, by = %caller.subject, "user approved");
        store::get_user(self.inner.db.pool(), &id)
            .await?
            .ok_or(Error::NotFound("user"))
    }

    /// DisableUser by `caller`: no new tokens, and the user's tokens are
    /// published as revoked.
    pub(crate) async fn disable_user_by(
        &self,
        caller: &Caller,
        req: &pb::DisableUserRequest,
    ) -> Result<pb::User> {
        let id = model::id("user_id", &req.user_id)?;
        model::reason("reason", &req.reason)?;
        if id == caller.subject {
            return Err(Error::Precondition {
                reason: "SELF_DISABLE",
                message: "a coordinator cannot disable their own account".into(),
            });
        }
        let mut tx = self.begin().await?;
        if !store::disable_user(&mut tx, &id, self.inner.clock_now()).await? {
            return Err(Error::NotFound("user"));
        }
        self.stage(
            &mut tx,
            caller.to_actor(),
            pb::AuditAction::UserDisable,
            target("", &id),
            &[],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(user = %id, by = %caller.subject, "user disabled");
        store::get_user(self.inner.db.pool(), &id)
            .await?
            .ok_or(Error::NotFound("user"))
    }
}
