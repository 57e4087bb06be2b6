//! Helpers of the pipeline tests (issue 12): other Schakel services, the
//! seeded family in a phase with a circle, questions, revoking the
//! agreement, walking a dossier through its phases, and the calls the tests
//! expect to succeed, answered with what the tests look at.

use super::*;

impl TestApp {
    /// Another Schakel service, e.g. `as_service("policy")`: its
    /// certificate on the connection and an internal-service token with
    /// subject `svc-<service>` bound to it.
    pub fn as_service(&self, service: &str) -> Client {
        let client = self.pki.service_client(service);
        BrokerServiceClient::with_interceptor(
            self.server.channel(client.tls.clone()),
            CallContext::with_token(Some(self.issuer.service_token(service, &client))),
        )
    }

    /// The police's aanmelder, who registers the seeded family.
    pub fn aanmelder(&self) -> Client {
        self.as_user("aanmelder-politie", "politie", &[Role::Aanmelder])
    }

    /// The police's aanmelder registers `request`.
    pub async fn register(
        &self,
        request: pb::RegisterDossierRequest,
    ) -> pb::RegisterDossierResponse {
        let response = self.aanmelder().register_dossier(request).await;
        response.unwrap().into_inner()
    }

    /// The seeded family registered under `key` by the police, with the
    /// organisations of `partners` added to its circle by the police's team.
    pub async fn family_with(&self, key: &str, partners: &[&str]) -> pb::RegisterDossierResponse {
        let registered = self.register_family(key).await;
        let id = &registered.dossier.as_ref().unwrap().dossier_id;
        for partner in partners {
            let joins = self.joins(id, partner);
            self.team("politie").add_participant(joins).await.unwrap();
        }
        registered
    }

    /// [`family_with`](Self::family_with), then moved by the police's team
    /// into `phase` (see [`advance_to`]; registration stays where it is).
    pub async fn family_in(
        &self,
        key: &str,
        partners: &[&str],
        phase: pb::Phase,
    ) -> pb::RegisterDossierResponse {
        let registered = self.family_with(key, partners).await;
        if phase != pb::Phase::Registration {
            let id = &registered.dossier.as_ref().unwrap().dossier_id;
            advance_to(&self.team("politie"), id, phase).await;
        }
        registered
    }

    /// The id of the dossier [`family_in`](Self::family_in) makes.
    pub async fn dossier_in(&self, key: &str, partners: &[&str], phase: pb::Phase) -> String {
        let registered = self.family_in(key, partners, phase).await;
        registered.dossier.unwrap().dossier_id
    }

    /// A question of the caller's organisation to `to` (a partner) about
    /// `fields` of a dossier, due in a week.
    pub fn ask(
        &self,
        dossier_id: &str,
        to: &str,
        fields: &[&str],
        purpose: &str,
    ) -> pb::RequestInformationRequest {
        pb::RequestInformationRequest {
            dossier_id: dossier_id.into(),
            to_organisation_id: self.orgs[to].clone(),
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
            person_ids: vec![],
            purpose: purpose.into(),
            justification: "Zicht op de toestand van Tom voor het veiligheidsplan.".into(),
            due_at: Some(to_timestamp(self.clock.now() + 7 * DAY)),
            idempotency_key: String::new(),
        }
    }

    /// A coordinator revokes the agreement: the procureur withdrew the
    /// authorisation.
    pub async fn revoke_agreement(&self) {
        self.legal_basis
            .revoke(
                &coordinator("coordinator-1"),
                &self.agreement_id,
                1,
                pb::RevocationReason::ProsecutorWithdrew as i32,
                "Machtiging ingetrokken.",
            )
            .await
            .unwrap();
    }
}

/// The pseudonymous id of a registered person by the client_ref it had.
pub fn person(registered: &pb::RegisterDossierResponse, client_ref: &str) -> String {
    registered
        .persons
        .iter()
        .find(|p| p.client_ref == client_ref)
        .unwrap_or_else(|| panic!("no person {client_ref}"))
        .person_id
        .clone()
}

/// `client` asks `request`: the information request it created.
pub async fn asked(
    client: &Client,
    request: pb::RequestInformationRequest,
) -> pb::InformationRequest {
    let response = client.clone().request_information(request).await;
    response.unwrap().into_inner().information_request.unwrap()
}

/// `client` tries to read a dossier (every field) for `purpose`.
pub async fn try_read(
    client: &Client,
    dossier_id: &str,
    purpose: &str,
) -> Result<tonic::Response<pb::GetDossierResponse>, tonic::Status> {
    let request = read_request(dossier_id, purpose);
    client.clone().get_dossier(request).await
}

/// `client` reads a dossier (every field) for `purpose`.
pub async fn read_by(client: &Client, dossier_id: &str, purpose: &str) -> pb::GetDossierResponse {
    let read = try_read(client, dossier_id, purpose).await;
    read.unwrap().into_inner()
}

/// The dossiers `client` lists, unfiltered.
pub async fn listed(client: &Client) -> Vec<pb::Dossier> {
    let response = client
        .clone()
        .list_dossiers(pb::ListDossiersRequest::default())
        .await;
    response.unwrap().into_inner().dossiers
}

/// The information requests `client` lists with `request`.
pub async fn questions(
    client: &Client,
    request: pb::ListInformationRequestsRequest,
) -> Vec<pb::InformationRequest> {
    let response = client.clone().list_information_requests(request).await;
    response.unwrap().into_inner().information_requests
}

/// The informing records `client` reads with `request`.
pub async fn records_by(
    client: &Client,
    request: pb::GetInformingStatusRequest,
) -> Vec<pb::InformingRecord> {
    let response = client.clone().get_informing_status(request).await;
    response.unwrap().into_inner().records
}

/// `client` moves a dossier from `from` to `to` (see [`step`]) after the
/// team's consultation.
pub async fn advance(client: &Client, dossier_id: &str, from: pb::Phase, to: pb::Phase) {
    let step = step(dossier_id, from, to, "teamoverleg");
    client.clone().advance_phase(step).await.unwrap();
}

/// Moves a dossier from registration along case_building, assessment,
/// case_direction (track chain approach), follow_up and closed until it is
/// in `target`.
pub async fn advance_to(client: &Client, dossier_id: &str, target: pb::Phase) {
    use pb::Phase::*;
    for (from, to) in [
        (Registration, CaseBuilding),
        (CaseBuilding, Assessment),
        (Assessment, CaseDirection),
        (CaseDirection, FollowUp),
        (FollowUp, Closed),
    ] {
        advance(client, dossier_id, from, to).await;
        if to == target {
            return;
        }
    }
    panic!("advance_to goes up to closed, not {target:?}");
}
