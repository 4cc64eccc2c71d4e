//! The SCRAM messages a client sends (RFC 5802 §7), parsed without trusting a byte of them.
//!
//! Weir offers no channel binding (as Kafka): the GS2 header must be `n` or `y`, never `p=`.
//! Extensions are refused except Kafka's `tokenauth` which Weir also refuses (no delegation
//! tokens), so any extension fails authentication.

/// Why a client message is refused. Every variant fails authentication.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramMessageError {
    #[error("not UTF-8")]
    NotUtf8,
    #[error("invalid GS2 header")]
    Gs2Header,
    #[error("channel binding is not supported")]
    ChannelBinding,
    #[error("mandatory extension not supported")]
    Extension,
    #[error("missing or misplaced attribute {0:?}")]
    Missing(char),
    #[error("invalid user name encoding")]
    UserName,
    #[error("invalid nonce")]
    Nonce,
    #[error("invalid base64 in {0:?}")]
    Base64(char),
    #[error("unexpected attributes after the proof")]
    Trailing,
}

/// `client-first-message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFirst<'a> {
    /// `gs2-header` as sent (`n,,` or `n,a=authzid,`), echoed in `c=` of the final message.
    pub gs2_header: &'a str,
    pub authzid: Option<String>,
    pub user: String,
    pub nonce: &'a str,
    /// `client-first-message-bare`, part of the AuthMessage.
    pub bare: &'a str,
}

/// `client-final-message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFinal<'a> {
    /// `c=`: base64 of the GS2 header (no channel binding data).
    pub channel_binding: Vec<u8>,
    pub nonce: &'a str,
    pub proof: Vec<u8>,
    /// `client-final-message-without-proof`, part of the AuthMessage.
    pub without_proof: &'a str,
}

pub fn parse_client_first(msg: &[u8]) -> Result<ClientFirst<'_>, ScramMessageError> {
    let msg = std::str::from_utf8(msg).map_err(|_| ScramMessageError::NotUtf8)?;
    // gs2-header = gs2-cbind-flag "," [ authzid ] ","
    let (flag, rest) = msg.split_once(',').ok_or(ScramMessageError::Gs2Header)?;
    match flag {
        "n" | "y" => {}
        f if f.starts_with("p=") => return Err(ScramMessageError::ChannelBinding),
        _ => return Err(ScramMessageError::Gs2Header),
    }
    let (authzid, bare) = rest.split_once(',').ok_or(ScramMessageError::Gs2Header)?;
    let authzid = match authzid {
        "" => None,
        a => Some(decode_saslname(
            a.strip_prefix("a=").ok_or(ScramMessageError::Gs2Header)?,
        )?),
    };
    let gs2_header = msg
        .get(..msg.len() - bare.len())
        .ok_or(ScramMessageError::Gs2Header)?;
    let mut attrs = bare.split(',');
    let user = match attrs.next() {
        Some(m) if m.starts_with("m=") => return Err(ScramMessageError::Extension),
        Some(n) => n
            .strip_prefix("n=")
            .ok_or(ScramMessageError::Missing('n'))?,
        None => return Err(ScramMessageError::Missing('n')),
    };
    let user = decode_saslname(user)?;
    let nonce = attrs
        .next()
        .and_then(|r| r.strip_prefix("r="))
        .ok_or(ScramMessageError::Missing('r'))?;
    check_nonce(nonce)?;
    if attrs.next().is_some() {
        // Kafka's only extension is `tokenauth` (delegation tokens), which Weir does not have.
        return Err(ScramMessageError::Extension);
    }
    Ok(ClientFirst {
        gs2_header,
        authzid,
        user,
        nonce,
        bare,
    })
}

pub fn parse_client_final(msg: &[u8]) -> Result<ClientFinal<'_>, ScramMessageError> {
    let msg = std::str::from_utf8(msg).map_err(|_| ScramMessageError::NotUtf8)?;
    let (without_proof, proof) = msg
        .rsplit_once(",p=")
        .ok_or(ScramMessageError::Missing('p'))?;
    if proof.contains(',') {
        return Err(ScramMessageError::Trailing);
    }
    let mut attrs = without_proof.split(',');
    let channel_binding = attrs
        .next()
        .and_then(|c| c.strip_prefix("c="))
        .ok_or(ScramMessageError::Missing('c'))?;
    let nonce = attrs
        .next()
        .and_then(|r| r.strip_prefix("r="))
        .ok_or(ScramMessageError::Missing('r'))?;
    check_nonce(nonce)?;
    if attrs.next().is_some() {
        return Err(ScramMessageError::Extension);
    }
    Ok(ClientFinal {
        channel_binding: base64_decode(channel_binding, 'c')?,
        nonce,
        proof: base64_decode(proof, 'p')?,
        without_proof,
    })
}

/// `saslname`: `=2C` is `,` and `=3D` is `=`; any other `=` or a `,` is malformed.
fn decode_saslname(s: &str) -> Result<String, ScramMessageError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(['=', ',']) {
        let (head, tail) = rest.split_at(i);
        out.push_str(head);
        rest = if let Some(t) = tail.strip_prefix("=2C") {
            out.push(',');
            t
        } else if let Some(t) = tail.strip_prefix("=3D") {
            out.push('=');
            t
        } else {
            return Err(ScramMessageError::UserName);
        };
    }
    out.push_str(rest);
    if out.is_empty() {
        return Err(ScramMessageError::UserName);
    }
    Ok(out)
}

/// `printable` characters except `,` (RFC 5802 §7).
fn check_nonce(nonce: &str) -> Result<(), ScramMessageError> {
    if nonce.is_empty()
        || !nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
    {
        return Err(ScramMessageError::Nonce);
    }
    Ok(())
}

fn base64_decode(s: &str, attr: char) -> Result<Vec<u8>, ScramMessageError> {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    STANDARD
        .decode(s)
        .map_err(|_| ScramMessageError::Base64(attr))
}

/// Escapes a user name as a `saslname` (the CLI and tests build client messages).
pub fn encode_saslname(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_rfc_client_messages() {
        let first = parse_client_first(b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL").expect("first");
        assert_eq!(first.gs2_header, "n,,");
        assert_eq!(first.user, "user");
        assert_eq!(first.nonce, "fyko+d2lbbFgONRv9qkxdawL");
        assert_eq!(first.bare, "n=user,r=fyko+d2lbbFgONRv9qkxdawL");
        let fin = parse_client_final(
            b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
        )
        .expect("final");
        assert_eq!(fin.channel_binding, b"n,,");
        assert_eq!(fin.nonce, "fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j");
        assert_eq!(fin.proof.len(), 20);
        assert_eq!(
            fin.without_proof,
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j"
        );
    }

    #[test]
    fn escaped_names_and_authzid() {
        let first = parse_client_first(b"n,a=a=3Db,n=x=2Cy=3Dz,r=abc").expect("first");
        assert_eq!(first.user, "x,y=z");
        assert_eq!(first.authzid.as_deref(), Some("a=b"));
        assert_eq!(first.gs2_header, "n,a=a=3Db,");
        assert_eq!(encode_saslname("x,y=z"), "x=2Cy=3Dz");
    }

    #[test]
    fn refuses_malformed_messages() {
        use ScramMessageError::*;
        let first = |m: &[u8]| parse_client_first(m).err();
        assert_eq!(first(b"p=tls-unique,,n=u,r=x"), Some(ChannelBinding));
        assert_eq!(first(b"q,,n=u,r=x"), Some(Gs2Header));
        assert_eq!(first(b"n,,m=ext,n=u,r=x"), Some(Extension));
        assert_eq!(first(b"n,,n=u,r=x,tokenauth=true"), Some(Extension));
        assert_eq!(first(b"n,,n=u=4,r=x"), Some(UserName));
        assert_eq!(first(b"n,,n=,r=x"), Some(UserName));
        assert_eq!(first(b"n,,n=u,r="), Some(Nonce));
        assert_eq!(first(b"n,,n=u"), Some(Missing('r')));
        assert_eq!(first(b"n,,"), Some(Missing('n')));
        assert_eq!(first(&[0xff, 0xfe]), Some(NotUtf8));
        let fin = |m: &[u8]| parse_client_final(m).err();
        assert_eq!(fin(b"c=biws,r=abc"), Some(Missing('p')));
        assert_eq!(fin(b"c=biws,r=abc,p=!!"), Some(Base64('p')));
        assert_eq!(fin(b"r=abc,p=AAAA"), Some(Missing('c')));
        assert_eq!(fin(b"c=biws,r=abc,x=1,p=AAAA"), Some(Extension));
    }
}
