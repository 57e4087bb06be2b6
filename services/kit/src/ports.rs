//! What one service asks of another, as traits: the broker asks the
//! legal-basis service ([`Basis`]), the active policy ([`PolicySource`]) and
//! the directory of organisations and users ([`Directory`]); legal-basis asks
//! the directory too. Each providing service implements its port in its own
//! crate (one process, `schakel dev`), and a gRPC client implements it for
//! microservices mode, so that no service's crate depends on another's.

use std::{collections::HashMap, sync::Arc};

use futures::future::BoxFuture;
use schakel_proto::v1 as pb;
use tonic::{Status, service::interceptor::InterceptedService, transport::Channel};

use crate::{auth::Role, client::CallContext, decision::DecisionTable};

/// The legal-basis service: `CheckBasis` and informing records.
pub trait Basis: Send + Sync + 'static {
    /// Whether an agreement covers the question (count a new dossier when asked).
    fn check(
        &self,
        request: pb::CheckBasisRequest,
    ) -> BoxFuture<'_, Result<pb::CheckBasisResponse, Status>>;
    /// Records informing one person, for the professional named in the request.
    fn record_informing(
        &self,
        request: pb::RecordInformingRequest,
    ) -> BoxFuture<'_, Result<pb::InformingRecord, Status>>;
    /// The informing records of a dossier (latest per person first).
    fn informing_records(
        &self,
        dossier_id: String,
        include_history: bool,
    ) -> BoxFuture<'_, Result<Vec<pb::InformingRecord>, Status>>;
}

/// The active policy as the broker enforces it.
#[derive(Clone, Debug)]
pub struct PolicySnapshot {
    /// The policy version.
    pub version: u64,
    /// The compiled decision table.
    pub table: Arc<DecisionTable>,
    /// The field catalogue, in table order.
    pub fields: Arc<Vec<pb::FieldDefinition>>,
}

/// Where the broker gets the active policy from.
pub trait PolicySource: Send + Sync + 'static {
    /// The active policy now.
    fn current(&self) -> Arc<PolicySnapshot>;
}

/// A policy followed over a watch channel (the gRPC follower fills it).
impl PolicySource for tokio::sync::watch::Receiver<Arc<PolicySnapshot>> {
    fn current(&self) -> Arc<PolicySnapshot> {
        self.borrow().clone()
    }
}

/// A user as the directory knows them (no name: only what decisions need).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryUser {
    /// Their organisation.
    pub organisation_id: String,
    /// Their roles.
    pub roles: Vec<Role>,
    /// Disabled users get no tokens and take no appointments.
    pub disabled: bool,
}

impl From<pb::User> for DirectoryUser {
    fn from(u: pb::User) -> Self {
        DirectoryUser {
            organisation_id: u.organisation_id,
            roles: u
                .roles
                .iter()
                .filter_map(|r| Role::from_proto(*r))
                .collect(),
            disabled: u.disabled,
        }
    }
}

/// The identity service's directory of organisations and users.
pub trait Directory: Send + Sync + 'static {
    /// The partner type code of organisation `id`, or `None` if there is no
    /// such organisation.
    fn partner_type<'a>(&'a self, id: &'a str) -> BoxFuture<'a, anyhow::Result<Option<String>>>;
    /// The registered name of organisation `id` (for reports to people),
    /// or `None` if there is no such organisation.
    fn organisation_name<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<Option<String>>>;
    /// User `id`, or `None` if there is no such user.
    fn user<'a>(&'a self, id: &'a str) -> BoxFuture<'a, anyhow::Result<Option<DirectoryUser>>>;
}

/// A fixed directory (organisation id -> partner type; user id -> user), for
/// tools and tests that run without an identity service.
#[derive(Debug, Default)]
pub struct FixedDirectory {
    /// Organisation id -> partner type code.
    pub organisations: HashMap<String, String>,
    /// Organisation id -> name (organisations without one are named by id).
    pub names: HashMap<String, String>,
    /// User id -> user; tests add users while the services run.
    pub users: std::sync::Mutex<HashMap<String, DirectoryUser>>,
}

impl FixedDirectory {
    /// A directory of these organisations and no users.
    pub fn of(organisations: HashMap<String, String>) -> Self {
        FixedDirectory {
            organisations,
            names: HashMap::new(),
            users: Default::default(),
        }
    }

    /// Adds (or replaces) a user.
    pub fn add_user(&self, id: &str, user: DirectoryUser) {
        self.users
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_owned(), user);
    }
}

impl Directory for FixedDirectory {
    fn partner_type<'a>(&'a self, id: &'a str) -> BoxFuture<'a, anyhow::Result<Option<String>>> {
        Box::pin(async move { Ok(self.organisations.get(id).cloned()) })
    }

    fn organisation_name<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<Option<String>>> {
        Box::pin(async move {
            Ok(self
                .organisations
                .contains_key(id)
                .then(|| self.names.get(id).cloned().unwrap_or_else(|| id.to_owned())))
        })
    }

    fn user<'a>(&'a self, id: &'a str) -> BoxFuture<'a, anyhow::Result<Option<DirectoryUser>>> {
        let user = self
            .users
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned();
        Box::pin(async move { Ok(user) })
    }
}

type IdentityClient =
    pb::identity_service_client::IdentityServiceClient<InterceptedService<Channel, CallContext>>;
use pb::identity_service_client::IdentityServiceClient;

/// The identity service over gRPC (mTLS and this service's token).
#[derive(Clone)]
pub struct RemoteDirectory {
    client: IdentityClient,
}

impl RemoteDirectory {
    /// Looks organisations and users up at the identity service behind `channel`.
    pub fn new(channel: Channel, context: CallContext) -> Self {
        Self {
            client: IdentityServiceClient::with_interceptor(channel, context),
        }
    }
}

fn identity_error(status: Status) -> anyhow::Error {
    anyhow::anyhow!("identity: {}: {}", status.code(), status.message())
}

impl RemoteDirectory {
    /// Organisation `id`: identity lists organisations page by page (a few
    /// hundred at most).
    async fn organisation(&self, id: &str) -> anyhow::Result<Option<pb::Organisation>> {
        let mut client = self.client.clone();
        let mut token = String::new();
        loop {
            let page = client
                .list_organisations(pb::ListOrganisationsRequest {
                    page: Some(pb::PageRequest {
                        page_size: 500,
                        page_token: token,
                    }),
                    ..Default::default()
                })
                .await
                .map_err(identity_error)?
                .into_inner();
            if let Some(org) = page.organisations.into_iter().find(|o| o.id == id) {
                return Ok(Some(org));
            }
            if page.next_page_token.is_empty() {
                return Ok(None);
            }
            token = page.next_page_token;
        }
    }
}

impl Directory for RemoteDirectory {
    fn partner_type<'a>(&'a self, id: &'a str) -> BoxFuture<'a, anyhow::Result<Option<String>>> {
        Box::pin(async move { Ok(self.organisation(id).await?.map(|o| o.partner_type)) })
    }

    fn organisation_name<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<Option<String>>> {
        Box::pin(async move { Ok(self.organisation(id).await?.map(|o| o.name)) })
    }

    fn user<'a>(&'a self, id: &'a str) -> BoxFuture<'a, anyhow::Result<Option<DirectoryUser>>> {
        Box::pin(async move {
            let mut client = self.client.clone();
            let answer = client
                .get_user(pb::GetUserRequest {
                    user_id: id.to_owned(),
                })
                .await;
            match answer {
                Ok(response) => Ok(response.into_inner().user.map(DirectoryUser::from)),
                Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
                Err(status) => Err(identity_error(status)),
            }
        })
    }
}
