//! Looking up organisations (owned by the identity service): an agreement's
//! parties must exist, and they are shown with their partner type.

use std::collections::HashMap;

use futures::future::BoxFuture;
use schakel_kit::client::CallContext;
use schakel_proto::v1::{self as pb, identity_service_client::IdentityServiceClient};
use tonic::{service::interceptor::InterceptedService, transport::Channel};

/// Where organisations are looked up.
pub trait Organisations: Send + Sync + 'static {
    /// The partner type code of organisation `id`, or `None` if there is no
    /// such organisation.
    fn partner_type<'a>(&'a self, id: &'a str) -> BoxFuture<'a, anyhow::Result<Option<String>>>;
}

/// A fixed list of organisations (id → partner type), for tools and tests
/// that run without an identity service.
#[derive(Clone, Debug, Default)]
pub struct FixedOrganisations(pub HashMap<String, String>);

impl Organisations for FixedOrganisations {
    fn partner_type<'a>(&'a self, id: &'a str) -> BoxFuture<'a, anyhow::Result<Option<String>>> {
        Box::pin(async move { Ok(self.0.get(id).cloned()) })
    }
}

/// The identity service over gRPC (mTLS and this service's token).
#[derive(Clone)]
pub struct RemoteOrganisations {
    client: IdentityServiceClient<InterceptedService<Channel, CallContext>>,
}

impl RemoteOrganisations {
    /// Looks organisations up at the identity service behind `channel`.
    pub fn new(channel: Channel, context: CallContext) -> Self {
        Self {
            client: IdentityServiceClient::with_interceptor(channel, context),
        }
    }
}

impl Organisations for RemoteOrganisations {
    fn partner_type<'a>(&'a self, id: &'a str) -> BoxFuture<'a, anyhow::Result<Option<String>>> {
        Box::pin(async move {
            // Identity lists organisations page by page (agreements are created
            // rarely; the list is a few hundred organisations at most).
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
                    .map_err(|s| anyhow::anyhow!("identity: {}: {}", s.code(), s.message()))?
                    .into_inner();
                if let Some(org) = page.organisations.iter().find(|o| o.id == id) {
                    return Ok(Some(org.partner_type.clone()));
                }
                if page.next_page_token.is_empty() {
                    return Ok(None);
                }
                token = page.next_page_token;
            }
        })
    }
}
