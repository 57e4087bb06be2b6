//! LookupDataSubject: a privacy officer answering an art. 15 request finds a
//! person's pseudonymous ids in the dossiers of their organisation's circle.

use schakel_kit::validate::Invalid;
use schakel_proto::v1::{self as pb, lookup_data_subject_request::Subject};

use super::reference;
use crate::{
    Broker,
    lookup::LookupKey,
    national_number,
    pipeline::{Call, Outcome},
    store,
};

fn token(key: &LookupKey, subject: Option<&Subject>) -> Outcome<Vec<u8>> {
    match subject {
        Some(Subject::NationalNumber(n)) => {
            let number = national_number::parse(n).map_err(|_| {
                Invalid::new("national_number", "not a valid national register number")
            })?;
            Ok(key.national_number(&number))
        }
        Some(Subject::NameAndBirthDate(p)) => Ok(key
            .name_and_birth_date(&p.given_name, &p.family_name, p.birth_date.as_ref())
            .ok_or_else(|| {
                Invalid::new(
                    "name_and_birth_date",
                    "given name, family name and a full birth date are required",
                )
            })?),
        None => Err(Invalid::new("subject", "a national number or a name and birth date").into()),
    }
}

/// LookupDataSubject.
pub(crate) async fn lookup(
    broker: &Broker,
    call: &Call,
    req: pb::LookupDataSubjectRequest,
) -> Outcome<pb::LookupDataSubjectResponse> {
    let reference = reference("request_reference", &req.request_reference)?;
    let key = LookupKey::derive(broker.inner.keys.current());
    let token = token(&key, req.subject.as_ref())?;
    let found =
        store::find_by_token(broker.inner.db.pool(), &token, &call.caller.organisation_id).await?;
    let mut scope = call.scope("");
    scope.person_ids = found.iter().map(|(_, p)| p.clone()).collect();
    scope.attributes = vec![("reference", reference)];
    let audit_index = broker.record(call, scope).await?;
    let matches = found
        .into_iter()
        .map(|(dossier_id, person_id)| pb::DataSubjectMatch {
            dossier_id,
            person_id,
        })
        .collect();
    Ok(pb::LookupDataSubjectResponse {
        matches,
        audit_index,
    })
}
