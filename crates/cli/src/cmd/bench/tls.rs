//! `weir bench --tls-only`: what TLS costs. One broker with a PLAINTEXT and an SSL listener;
//! produce (acks=1) and then consume the same scenario over each, in alternating rounds, so
//! both see the same machine and page cache; the medians and their ratio are printed. The
//! clients are Weir's own (rustls, ring), as the broker.

use std::net::TcpListener as StdListener;
use std::path::PathBuf;

use anyhow::{bail, Context};
use weir_client::{Client, ClientSecurity, TlsClient, TlsSettings};

use super::broker::{Broker, WorkDir};
use super::machine::machine_line;
use super::{consume_secured, create_topic, produce_secured, BenchArgs, Measured, Scenario, MB};

/// Rounds of each listener (alternating).
const ROUNDS: usize = 5;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Runs the comparison and prints the table.
pub(super) fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let (Some(keystore), Some(ca)) = (&args.tls_keystore, &args.tls_ca) else {
        bail!("--tls-only needs --tls-keystore (the broker's certificate and key) and --tls-ca");
    };
    let work_dir = WorkDir::new(args.data_dir.clone())?;
    println!("# weir bench --tls-only\n");
    println!("{}\n", machine_line());
    let plain_port = StdListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let tls_port = StdListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let settings = vec![
        format!("listeners=PLAINTEXT://127.0.0.1:{plain_port},SSL://127.0.0.1:{tls_port}"),
        format!("ssl.keystore.location={}", keystore.display()),
    ];
    let broker = Broker::start_with(&work_dir.path.join("broker"), plain_port, &settings)?;
    let tls = TlsClient::new(&TlsSettings {
        ca_file: Some(PathBuf::from(ca)),
        ..TlsSettings::default()
    })
    .context("--tls-ca")?;
    let secured = ClientSecurity {
        tls: Some(tls),
        sasl: None,
    };
    let records = args
        .records
        .unwrap_or(if args.quick { 100_000 } else { 500_000 });
    let scenario = Scenario {
        value_bytes: 1024,
        partitions: 8,
        records,
        producers: 4,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let listeners = [
        (
            "PLAINTEXT",
            format!("127.0.0.1:{plain_port}"),
            ClientSecurity::plaintext(),
        ),
        ("SSL", format!("127.0.0.1:{tls_port}"), secured),
    ];
    let result = rt.block_on(async {
        // [listener][produce, consume] -> MB/s of each round.
        let mut rates = [[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
        for round in 0..ROUNDS * 2 {
            let which = round % 2;
            let (name, addr, security) = &listeners[which];
            let mut client = Client::connect_secured(
                addr,
                weir_client::connection::DEFAULT_REQUEST_TIMEOUT,
                security.clone(),
            )
            .await
            .with_context(|| format!("connect to {name} {addr}"))?;
            let topic = format!("weir-bench-tls-{}-{round}", std::process::id());
            // The leader as this listener advertises it: the same port for the data.
            let leader = create_topic(&mut client, &topic, scenario.partitions).await?;
            let p: Measured = produce_secured(&leader, &topic, scenario, 1, security).await?;
            let c: Measured = consume_secured(&leader, &topic, scenario, security).await?;
            client
                .delete_topic(&topic)
                .await
                .with_context(|| format!("delete topic {topic}"))?;
            eprintln!(
                "round {round} {name}: produce {:.1} MB/s, consume {:.1} MB/s",
                p.bytes_per_second() / MB,
                c.bytes_per_second() / MB
            );
            rates[which][0].push(p.bytes_per_second() / MB);
            rates[which][1].push(c.bytes_per_second() / MB);
        }
        anyhow::Ok(rates)
    });
    let log = broker.log().map(std::path::Path::to_path_buf);
    drop(broker);
    let rates = match (result, log) {
        (Err(e), Some(log)) => return Err(e.context(format!("broker log: {}", log.display()))),
        (r, log) => {
            if let Some(log) = log {
                let _ = std::fs::remove_file(log);
            }
            r?
        }
    };
    let [[pp, pc], [tp, tc]] = rates;
    let (pp, pc, tp, tc) = (median(pp), median(pc), median(tp), median(tc));
    println!(
        "{}, produce acks=1 then consume, {ROUNDS} rounds per listener, alternating; MB = 10^6 bytes of record values\n",
        scenario.describe()
    );
    println!("| listener | produce MB/s (median) | consume MB/s (median) |");
    println!("|---|---|---|");
    println!("| PLAINTEXT | {pp:.1} | {pc:.1} |");
    println!("| SSL | {tp:.1} | {tc:.1} |");
    println!(
        "\nratio SSL/PLAINTEXT: produce {:.3}, consume {:.3}",
        tp / pp,
        tc / pc
    );
    Ok(())
}
