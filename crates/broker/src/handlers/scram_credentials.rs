//! DescribeUserScramCredentials and AlterUserScramCredentials (KIP-554).

use std::collections::BTreeMap;
use std::sync::Arc;

use weir_protocol::kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use weir_protocol::kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use weir_protocol::kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use weir_protocol::ResponseError;

use super::{msg, str, Conn};
use crate::security::credentials::Alteration;
use crate::security::{Operation, Resource};
use crate::state::State;

pub fn describe(
    state: &State,
    req: DescribeUserScramCredentialsRequest,
    conn: &Conn,
) -> DescribeUserScramCredentialsResponse {
    let mut r = DescribeUserScramCredentialsResponse::default();
    if !conn.may(state, Operation::Describe, Resource::Cluster) {
        r.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return r;
    }
    let all: BTreeMap<String, Vec<CredentialInfo>> = state
        .security
        .credentials
        .describe()
        .into_iter()
        .map(|(user, creds)| {
            let infos = creds
                .into_iter()
                .map(|(m, iterations)| {
                    let mut c = CredentialInfo::default();
                    c.mechanism = m.code();
                    c.iterations = i32::try_from(iterations).unwrap_or(i32::MAX);
                    c
                })
                .collect();
            (user, infos)
        })
        .collect();
    let result = |user: &str, error: Option<(ResponseError, String)>, infos| {
        let mut u = DescribeUserScramCredentialsResult::default();
        u.user = str(user);
        if let Some((e, m)) = error {
            u.error_code = e.code();
            u.error_message = msg(m);
        }
        u.credential_infos = infos;
        u
    };
    r.results = match req.users.filter(|u| !u.is_empty()) {
        // Null or empty: every user.
        None => all
            .into_iter()
            .map(|(user, infos)| result(&user, None, infos))
            .collect(),
        Some(users) => {
            let mut count: BTreeMap<String, usize> = BTreeMap::new();
            for u in &users {
                *count.entry(u.name.to_string()).or_default() += 1;
            }
            count
                .into_iter()
                .map(|(user, n)| {
                    if n > 1 {
                        let e = (
                            ResponseError::DuplicateResource,
                            format!("Cannot describe SCRAM credentials for the same user twice in a single request: {user}"),
                        );
                        return result(&user, Some(e), Vec::new());
                    }
                    match all.get(&user) {
                        Some(infos) => result(&user, None, infos.clone()),
                        None => result(
                            &user,
                            Some((
                                ResponseError::ResourceNotFound,
                                format!("Attempt to describe nonexistent user: {user}"),
                            )),
                            Vec::new(),
                        ),
                    }
                })
                .collect()
        }
    };
    r
}

pub async fn alter(
    state: &Arc<State>,
    req: AlterUserScramCredentialsRequest,
    conn: &Conn,
) -> AlterUserScramCredentialsResponse {
    let mut alterations: Vec<Alteration> = req
        .deletions
        .into_iter()
        .map(|d| Alteration::Delete {
            user: d.name.to_string(),
            mechanism: d.mechanism,
        })
        .collect();
    alterations.extend(req.upsertions.into_iter().map(|u| Alteration::Upsert {
        user: u.name.to_string(),
        mechanism: u.mechanism,
        iterations: u.iterations,
        salt: u.salt.to_vec(),
        salted_password: u.salted_password.to_vec(),
    }));
    let mut r = AlterUserScramCredentialsResponse::default();
    let result = |user: &str, e: Option<(ResponseError, String)>| {
        let mut res = AlterUserScramCredentialsResult::default();
        res.user = str(user);
        if let Some((e, m)) = e {
            res.error_code = e.code();
            res.error_message = msg(m);
        }
        res
    };
    if !conn.may(state, Operation::Alter, Resource::Cluster) {
        let users: std::collections::BTreeSet<&str> =
            alterations.iter().map(Alteration::user).collect();
        r.results = users
            .iter()
            .map(|u| {
                result(
                    u,
                    Some((
                        ResponseError::ClusterAuthorizationFailed,
                        "Cluster authorization failed.".into(),
                    )),
                )
            })
            .collect();
        return r;
    }
    let altered = state.security.credentials.alter(alterations.clone()).await;
    match altered {
        Ok(results) => {
            r.results = results.into_iter().map(|(u, e)| result(&u, e)).collect();
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot persist SCRAM credentials");
            let users: std::collections::BTreeSet<&str> =
                alterations.iter().map(Alteration::user).collect();
            r.results = users
                .iter()
                .map(|u| result(u, Some((ResponseError::KafkaStorageError, e.to_string()))))
                .collect();
        }
    }
    r
}
