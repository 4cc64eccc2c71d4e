//! The console's header parsers against hostile input: `Authorization: Basic` values, `Cookie`
//! headers and login redirect targets, generated at random and by mutating valid ones
//! (a seeded generator, so a failure replays). None may panic; what they accept must keep its
//! promises: a Basic credential has a non-empty user and decodes back from the header, a
//! session id is a non-empty value of Weir's cookie, and a redirect target is a path on this
//! console (never `//host`, a scheme or a backslash).

use axum::http::{header, HeaderMap, HeaderValue};
use base64::Engine;
use weir_http::auth::{safe_next, session_id, COOKIE};
use weir_http::basic_auth;

const ROUNDS: usize = 200_000;

/// xorshift64*: small, seeded, good enough to spread inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A valid sample, mutated a few times (flip, insert, delete, splice a sharp byte), or
    /// plain random bytes.
    fn input(&mut self, samples: &[&[u8]]) -> Vec<u8> {
        const SHARP: &[u8] = b" ;=:/\\%?#@\t\r\n\0\x7f\xff\xc3";
        if self.below(4) == 0 {
            let len = self.below(300);
            return (0..len).map(|_| self.next() as u8).collect();
        }
        let mut v = samples[self.below(samples.len())].to_vec();
        for _ in 0..1 + self.below(4) {
            let at = self.below(v.len() + 1);
            match self.below(4) {
                0 if at < v.len() => v[at] ^= 1 << self.below(8),
                1 => v.insert(at, SHARP[self.below(SHARP.len())]),
                2 if at < v.len() => {
                    v.remove(at);
                }
                _ => v.insert(at, self.next() as u8),
            }
        }
        v
    }
}

#[test]
fn basic_auth_values_never_panic_and_keep_their_promises() {
    let good = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("alice:s3cr:et")
    );
    let long = format!("Basic {}", "QUFB".repeat(2000));
    let samples: [&[u8]; 5] = [
        good.as_bytes(),
        b"basic YTpi",
        b"Bearer abc",
        b"Basic ",
        long.as_bytes(),
    ];
    let mut rng = Rng(0x5eed_0001);
    let mut accepted = 0;
    for _ in 0..ROUNDS {
        let value = rng.input(&samples);
        if let Some(Ok((user, password))) = basic_auth::parse(&value) {
            assert!(!user.is_empty(), "{value:?}");
            assert!(
                !user.contains(':'),
                "the user ends at the first colon: {value:?}"
            );
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(value[6..].trim_ascii())
                .expect("accepted values are base64");
            assert_eq!(decoded, format!("{user}:{password}").into_bytes());
            accepted += 1;
        }
    }
    assert!(
        accepted > 0,
        "the mutations never produced a valid credential"
    );
}

#[test]
fn cookie_headers_never_panic_and_only_yield_weirs_cookie() {
    let ours = format!("{COOKIE}=abc123");
    let mixed = format!("a=1; {COOKIE}=xyz; b=2");
    let samples: [&[u8]; 4] = [ours.as_bytes(), mixed.as_bytes(), b"x=y", b";;="];
    let mut rng = Rng(0x5eed_0002);
    let mut found = 0;
    for _ in 0..ROUNDS {
        let mut headers = HeaderMap::new();
        for _ in 0..1 + rng.below(3) {
            if let Ok(v) = HeaderValue::from_bytes(&rng.input(&samples)) {
                headers.append(header::COOKIE, v);
            }
        }
        if let Some(id) = session_id(&headers) {
            assert!(!id.is_empty());
            let pair = format!("{COOKIE}={id}");
            assert!(
                headers
                    .get_all(header::COOKIE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .any(|v| v.split(';').any(|kv| kv.trim() == pair)),
                "{id:?} is not one of the cookies in {headers:?}"
            );
            found += 1;
        }
    }
    assert!(found > 0, "the mutations never kept Weir's cookie");
}

#[test]
fn redirect_targets_stay_on_the_console() {
    let samples: [&[u8]; 5] = [
        b"/topics/orders?partition=1",
        b"//evil.example/x",
        b"https://evil.example",
        b"/\\evil.example",
        b"/groups",
    ];
    let mut rng = Rng(0x5eed_0003);
    for _ in 0..ROUNDS {
        let raw = rng.input(&samples);
        let next = String::from_utf8_lossy(&raw);
        let to = safe_next(Some(&next));
        assert!(to.starts_with('/'), "{next:?} -> {to:?}");
        assert!(
            !to.starts_with("//") && !to.contains('\\'),
            "{next:?} -> {to:?}"
        );
        assert!(to == "/" || to == next, "{next:?} -> {to:?}");
    }
    assert_eq!(safe_next(None), "/");
}
