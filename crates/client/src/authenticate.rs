//! SASL on a fresh connection, after ApiVersions: SaslHandshake v1 names the mechanism, then
//! SaslAuthenticate carries the mechanism's tokens (one for PLAIN, two round trips for
//! SCRAM), as Kafka's clients do (KIP-152).

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::connection::Connection;
use crate::error::{error_name, ClientError};
use crate::scram::{plain_token, SaslMechanism, ScramClient};
use crate::security::SaslCredentials;

impl Connection {
    /// Authenticates this connection as `credentials`; any failure leaves it unusable (the
    /// broker closes it too).
    pub(crate) async fn authenticate(
        &mut self,
        credentials: &SaslCredentials,
    ) -> Result<(), ClientError> {
        let mechanism = credentials.mechanism;
        let failed = |addr: &str, message: String| ClientError::Authentication {
            addr: addr.to_owned(),
            mechanism: mechanism.name(),
            message,
        };
        let handshake = self
            .send_version(
                SaslHandshakeRequest::default()
                    .with_mechanism(StrBytes::from_static_str(mechanism.name())),
                1,
            )
            .await?;
        if handshake.error_code != 0 {
            let offered: Vec<&str> = handshake.mechanisms.iter().map(|m| m.as_str()).collect();
            let offered = if offered.is_empty() {
                "no SASL on this listener".to_owned()
            } else {
                format!("the broker offers {}", offered.join(", "))
            };
            return Err(failed(
                self.addr(),
                format!("{} ({offered})", error_name(handshake.error_code)),
            ));
        }
        let version = self.version(ApiKey::SaslAuthenticate)?;
        match mechanism {
            SaslMechanism::Plain => {
                let token = plain_token(&credentials.user, &credentials.password);
                self.sasl_step(token, version, mechanism).await?;
            }
            SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
                let mut scram =
                    ScramClient::new(mechanism, &credentials.user, &credentials.password);
                let first = self
                    .sasl_step(scram.client_first().into_bytes(), version, mechanism)
                    .await?;
                let server_first = String::from_utf8_lossy(&first).into_owned();
                let last = scram
                    .client_final(&server_first)
                    .map_err(|e| failed(self.addr(), e.to_string()))?;
                let server_final = self
                    .sasl_step(last.into_bytes(), version, mechanism)
                    .await?;
                scram
                    .verify_server_final(&String::from_utf8_lossy(&server_final))
                    .map_err(|e| failed(self.addr(), e.to_string()))?;
            }
        }
        tracing::debug!(addr = %self.addr(), user = %credentials.user, mechanism = mechanism.name(), "authenticated");
        Ok(())
    }

    /// One SaslAuthenticate round trip: the server's token, or its refusal as an error.
    async fn sasl_step(
        &mut self,
        token: Vec<u8>,
        version: i16,
        mechanism: SaslMechanism,
    ) -> Result<Bytes, ClientError> {
        let resp: SaslAuthenticateResponse = self
            .send_version(
                SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token)),
                version,
            )
            .await?;
        if resp.error_code != 0 {
            let detail = resp
                .error_message
                .as_ref()
                .map(|m| format!(": {}", m.as_str()))
                .unwrap_or_default();
            return Err(ClientError::Authentication {
                addr: self.addr().to_owned(),
                mechanism: mechanism.name(),
                message: format!("{}{detail}", error_name(resp.error_code)),
            });
        }
        Ok(resp.auth_bytes)
    }
}
