//! SCRAM users (KIP-554): DescribeUserScramCredentials and AlterUserScramCredentials, as
//! `weir user` uses them. The caller salts and hashes the password: it never travels.

use bytes::Bytes;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, ApiKey, DescribeUserScramCredentialsRequest,
};

use super::{text, Client};
use crate::error::ClientError;

/// One user's credentials: (mechanism code: 1 SCRAM-SHA-256, 2 SCRAM-SHA-512; iterations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCredentials {
    pub user: String,
    pub credentials: Vec<(i8, i32)>,
}

/// A credential to create or replace, salted by the caller.
#[derive(Debug, Clone)]
pub struct ScramUpsertion {
    pub user: String,
    pub mechanism: i8,
    pub iterations: i32,
    pub salt: Vec<u8>,
    pub salted_password: Vec<u8>,
}

impl Client {
    /// The users with SCRAM credentials (all of them when `users` is empty).
    pub async fn describe_users(
        &mut self,
        users: &[String],
    ) -> Result<Vec<UserCredentials>, ClientError> {
        let api = ApiKey::DescribeUserScramCredentials;
        let mut req = DescribeUserScramCredentialsRequest::default();
        req.users = (!users.is_empty()).then(|| {
            users
                .iter()
                .map(|u| {
                    let mut n = UserName::default();
                    n.name = text(u);
                    n
                })
                .collect()
        });
        let resp = self.admin().await?.send(req).await?;
        ClientError::check(api, resp.error_code, resp.error_message.as_deref())?;
        let mut out = Vec::new();
        for r in resp.results {
            ClientError::check(api, r.error_code, r.error_message.as_deref())?;
            out.push(UserCredentials {
                user: r.user.to_string(),
                credentials: r
                    .credential_infos
                    .iter()
                    .map(|c| (c.mechanism, c.iterations))
                    .collect(),
            });
        }
        Ok(out)
    }

    /// Creates or replaces credentials and deletes `(user, mechanism)` ones; the first
    /// user's error fails the call.
    pub async fn alter_users(
        &mut self,
        upsertions: Vec<ScramUpsertion>,
        deletions: Vec<(String, i8)>,
    ) -> Result<(), ClientError> {
        let api = ApiKey::AlterUserScramCredentials;
        let mut req = AlterUserScramCredentialsRequest::default();
        req.upsertions = upsertions
            .into_iter()
            .map(|u| {
                let mut c = ScramCredentialUpsertion::default();
                c.name = text(&u.user);
                c.mechanism = u.mechanism;
                c.iterations = u.iterations;
                c.salt = Bytes::from(u.salt);
                c.salted_password = Bytes::from(u.salted_password);
                c
            })
            .collect();
        req.deletions = deletions
            .into_iter()
            .map(|(user, mechanism)| {
                let mut d = ScramCredentialDeletion::default();
                d.name = text(&user);
                d.mechanism = mechanism;
                d
            })
            .collect();
        let resp = self.admin().await?.send(req).await?;
        for r in resp.results {
            ClientError::check(api, r.error_code, r.error_message.as_deref())?;
        }
        Ok(())
    }
}
