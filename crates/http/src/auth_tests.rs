//! The login flow against a real broker state and the real listener: sessions, the read-only
//! role, what a user may see, the probes' token, failed logins counted with SASL's.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weir_broker::security::scram::Mechanism;
use weir_broker::{Broker, BrokerConfig};

use super::*;

const TOKEN: &str = "a-token-of-24-characters";

struct Answer {
    code: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: weir\r\nConnection: close\r\n");
    for (k, v) in extra {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        req.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response");
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    Answer {
        code,
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// A login as the browser makes it: the form's page first (its CSRF cookie and token), then
/// the POST carrying both.
async fn login(addr: SocketAddr, user: &str, password: &str) -> Answer {
    let page = call(addr, "GET", "/login", &[], "").await;
    let binding = page
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .expect("the CSRF cookie")
        .to_string();
    let token = page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the form's CSRF token")
        .to_string();
    call(
        addr,
        "POST",
        "/login",
        &[("Cookie", binding.as_str())],
        &format!("user={user}&password={password}&next=%2Ftopics&csrf={token}"),
    )
    .await
}

fn cookie_of(a: &Answer) -> String {
    let set = a.header("set-cookie").expect("a cookie");
    let id = set
        .split(';')
        .next()
        .and_then(|kv| kv.strip_prefix("weir_session="))
        .expect("the session cookie");
    format!("weir_session={id}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_sessions_roles_and_the_probe_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (user, pw) in [("admin", "admin-pw"), ("alice", "alice-pw")] {
        weir_broker::security::credentials::upsert_offline(
            dir.path(),
            user,
            Mechanism::ScramSha256,
            pw,
            4096,
        )
        .expect("user");
    }
    let pairs: BTreeMap<String, String> = [
        (
            "listeners",
            "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
        ),
        ("super.users", "User:admin"),
        ("connection.failed.authentication.delay.ms", "150"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let config = BrokerConfig::from_pairs(
        "127.0.0.1:0".parse().expect("addr"),
        None,
        dir.path().to_path_buf(),
        pairs,
    )
    .expect("config")
    .0;
    let http = HttpService::bind(&HttpConfig {
        listen: Some("127.0.0.1:0".parse().expect("addr")),
        metrics_token: Some(TOKEN.to_string()),
        ..Default::default()
    })
    .await
    .expect("bind")
    .expect("enabled");
    let addr = http.local_addr();
    let broker = Broker::open(config).await.expect("open");
    let state = broker.state().clone();
    state
        .create_topic("t.q", 1, 1, Default::default())
        .await
        .expect("topic");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(broker.serve_with(
        async {
            let _ = stopped.await;
        },
        vec![Box::new(http)],
    ));
    let bearer = format!("Bearer {TOKEN}");
    let auth = [("Authorization", bearer.as_str())];
    let mut ready = 0;
    for _ in 0..200 {
        ready = call(addr, "GET", "/readyz", &auth, "").await.code;
        if ready == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(ready, 200);

    // The probes: the token, not a session.
    assert_eq!(call(addr, "GET", "/metrics", &[], "").await.code, 401);
    assert_eq!(call(addr, "GET", "/metrics", &auth, "").await.code, 200);
    // No session: redirected (pages) or refused (API).
    let a = call(addr, "GET", "/topics", &[], "").await;
    assert_eq!(
        (a.code, a.header("location")),
        (303, Some("/login?next=%2Ftopics"))
    );
    assert_eq!(call(addr, "GET", "/api/topics", &[], "").await.code, 401);

    // A wrong password: 401 after the delay, counted as a failed authentication.
    let failed_before = state.security.failed_authentications();
    let started = Instant::now();
    let a = login(addr, "alice", "nope").await;
    assert_eq!(a.code, 401);
    assert!(a.header("set-cookie").is_none());
    assert!(
        a.body.contains("Invalid user name or password"),
        "{}",
        a.body
    );
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(state.security.failed_authentications(), failed_before + 1);

    // alice: logged in, read-only, sees nothing no ACL lets her DESCRIBE.
    let a = login(addr, "alice", "alice-pw").await;
    assert_eq!((a.code, a.header("location")), (303, Some("/topics")));
    let alice = cookie_of(&a);
    let with_alice = [("Cookie", alice.as_str())];
    let a = call(addr, "GET", "/api/topics", &with_alice, "").await;
    assert_eq!(a.code, 200);
    let l: serde_json::Value = serde_json::from_str(&a.body).expect("json");
    assert_eq!(l["topics"], serde_json::json!([]));
    assert_eq!(
        call(addr, "GET", "/api/topics/t.q", &with_alice, "")
            .await
            .code,
        404
    );
    let page = call(addr, "GET", "/", &with_alice, "").await;
    assert!(page.body.contains("read-only"), "{}", page.body);
    assert_eq!(
        call(addr, "POST", "/topics/t.q", &with_alice, "x=1")
            .await
            .code,
        403
    );
    assert_eq!(
        call(addr, "GET", "/api/debug/bundle", &with_alice, "")
            .await
            .code,
        403
    );

    // admin (a super user): sees the topic and passes the role check.
    let admin = cookie_of(&login(addr, "admin", "admin-pw").await);
    let with_admin = [("Cookie", admin.as_str())];
    let a = call(addr, "GET", "/api/topics", &with_admin, "").await;
    let l: serde_json::Value = serde_json::from_str(&a.body).expect("json");
    assert_eq!(l["topics"][0]["name"], "t.q");
    // ... and then meets the CSRF guard, which a POST without its token does not pass.
    let a = call(addr, "POST", "/topics/t.q", &with_admin, "x=1").await;
    assert_eq!(a.code, 403);
    assert!(a.body.contains("CSRF"), "{}", a.body);

    // Logout ends the session on the server.
    let a = call(addr, "POST", "/logout", &with_alice, "").await;
    assert_eq!(a.code, 303);
    assert!(a
        .header("set-cookie")
        .is_some_and(|c| c.contains("Max-Age=0")));
    assert_eq!(
        call(addr, "GET", "/api/topics", &with_alice, "").await.code,
        401
    );

    stop.send(()).expect("serving");
    tokio::time::timeout(Duration::from_secs(40), served)
        .await
        .expect("stopped in time")
        .expect("task")
        .expect("clean shutdown");
}
