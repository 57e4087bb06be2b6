//! The identity service as the [`Directory`] port of the services in the
//! same process (`schakel dev`, `serve all`).

use futures::future::BoxFuture;
use schakel_kit::ports::{Directory, DirectoryUser};

use crate::{Identity, store};

impl Directory for Identity {
    fn partner_type<'a>(&'a self, id: &'a str) -> BoxFuture<'a, anyhow::Result<Option<String>>> {
        Box::pin(async move {
            let org = store::get_organisation(self.database().pool(), id)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(org.map(|o| o.partner_type))
        })
    }

    fn organisation_name<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<Option<String>>> {
        Box::pin(async move {
            let org = store::get_organisation(self.database().pool(), id)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(org.map(|o| o.name))
        })
    }

    fn user<'a>(&'a self, id: &'a str) -> BoxFuture<'a, anyhow::Result<Option<DirectoryUser>>> {
        Box::pin(async move {
            let user = store::get_user(self.database().pool(), id)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(user.map(DirectoryUser::from))
        })
    }
}
