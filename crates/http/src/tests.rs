use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weir_broker::{Broker, BrokerConfig};

use super::*;

/// One HTTP/1.1 GET on a fresh connection: status code and body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: weir\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8(buf).expect("utf8");
    let (head, body) = text.split_once("\r\n\r\n").expect("a response");
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    (code, body.to_string())
}

fn config(dir: &std::path::Path) -> BrokerConfig {
    BrokerConfig::from_pairs(
        "127.0.0.1:0".parse().expect("addr"),
        None,
        dir.to_path_buf(),
        Default::default(),
    )
    .expect("config")
    .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_probes_before_and_metrics_after_the_broker_opens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let http = HttpService::bind(&HttpConfig {
        listen: Some("127.0.0.1:0".parse().expect("addr")),
        ..Default::default()
    })
    .await
    .expect("bind")
    .expect("enabled");
    let addr = http.local_addr();
    // Before the state exists (recovery): alive, not ready.
    assert_eq!(get(addr, "/livez").await.0, 200);
    let (code, body) = get(addr, "/readyz").await;
    assert_eq!(code, 503);
    let r: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(r["ready"], false);
    assert_eq!(r["reasons"][0], "recovering");

    let broker = Broker::open(config(dir.path())).await.expect("open");
    let state = broker.state().clone();
    state
        .create_topic("t.q", 2, 1, Default::default())
        .await
        .expect("topic");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(broker.serve_with(
        async {
            let _ = stopped.await;
        },
        vec![Box::new(http)],
    ));
    let mut ready = (0, String::new());
    for _ in 0..100 {
        ready = get(addr, "/readyz").await;
        if ready.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(ready.0, 200, "{}", ready.1);
    let r: serde_json::Value = serde_json::from_str(&ready.1).expect("json");
    assert_eq!(r, serde_json::json!({"ready": true, "reasons": []}));

    let (code, text) = get(addr, "/metrics").await;
    assert_eq!(code, 200);
    assert!(
        text.contains("# TYPE weir_requests_total counter\n"),
        "{text}"
    );
    assert!(text.contains("weir_partitions 2\n"), "{text}");
    assert!(
        text.contains("weir_topic_produced_bytes_total{topic=\"t.q\"} 0\n"),
        "{text}"
    );
    assert!(text.contains("# TYPE weir_fsync_duration_seconds histogram\n"));
    assert!(text.contains("weir_log_dir_free_bytes "));
    assert_eq!(get(addr, "/nope").await.0, 404);

    // The console and its JSON twins, from the same state.
    let (code, html) = get(addr, "/").await;
    assert_eq!(code, 200);
    assert!(html.contains("<h1>Overview</h1>"), "{html}");
    let (code, body) = get(addr, "/api/overview").await;
    assert_eq!(code, 200);
    let o: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        (o["topics"].as_u64(), o["partitions"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(o["readiness"]["ready"], true);
    let (_, body) = get(addr, "/api/topics").await;
    let l: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(l["topics"][0]["name"], "t.q");
    let (code, html) = get(addr, "/topics/t.q").await;
    assert_eq!(code, 200);
    assert!(html.contains("<h1>t.q</h1>"), "{html}");
    let (code, html) = get(addr, "/topics/gone").await;
    assert_eq!(code, 404);
    assert!(
        html.contains("topic &quot;gone&quot; does not exist"),
        "{html}"
    );
    let (code, body) = get(addr, "/api/groups/no%20such").await;
    assert_eq!(code, 404);
    let e: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(e["error"], "group \"no such\" does not exist");
    assert_eq!(get(addr, "/assets/console.css").await.0, 200);

    state.delete_topic("t.q").await.expect("delete");
    let (_, text) = get(addr, "/metrics").await;
    assert!(!text.contains("t.q"), "{text}");

    stop.send(()).expect("serving");
    tokio::time::timeout(Duration::from_secs(40), served)
        .await
        .expect("stopped in time")
        .expect("task")
        .expect("clean shutdown");
    // The listener ended with the broker.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[test]
fn draining_is_not_ready() {
    let r = health::readiness(None, true);
    assert!(!r.ready);
    assert_eq!(
        r.reasons,
        vec!["draining".to_string(), "recovering".to_string()]
    );
}
