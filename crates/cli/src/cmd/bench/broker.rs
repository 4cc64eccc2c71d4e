//! The broker under test: a `weir serve` child bench starts (and kills), or one given with
//! `--brokers`; and the working directory for the disk tests and the child's data.

use std::fs::File;
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::{cpu_delta, process_cpu_seconds, Measured};

/// A `weir serve` child process, killed when this is dropped.
pub(super) struct Started {
    pub(super) child: Child,
    pub(super) addr: String,
    /// The HTTP listener (`/metrics`).
    pub(super) http_addr: String,
    pub(super) log: PathBuf,
    pub(super) data_dir: PathBuf,
}

impl Started {
    /// Where every broker this bench process starts writes its output.
    pub(super) fn log_path() -> PathBuf {
        std::env::temp_dir().join(format!("weir-bench-{}.log", std::process::id()))
    }

    /// Starts this executable as `weir serve` on a free port over `data_dir`, without
    /// waiting for it.
    pub(super) fn spawn(data_dir: &Path) -> anyhow::Result<Started> {
        let port = StdListener::bind("127.0.0.1:0")?.local_addr()?.port();
        Self::spawn_with(data_dir, port, &[])
    }

    /// [`Started::spawn`] with the PLAINTEXT listener on `port` and `settings` as `--set`.
    pub(super) fn spawn_with(
        data_dir: &Path,
        port: u16,
        settings: &[String],
    ) -> anyhow::Result<Started> {
        Self::spawn_logged(data_dir, port, settings, Self::log_path())
    }

    /// [`Started::spawn_with`] writing its output to `log` (the brokers of a cluster each
    /// need a file of their own).
    pub(super) fn spawn_logged(
        data_dir: &Path,
        port: u16,
        settings: &[String],
        log: PathBuf,
    ) -> anyhow::Result<Started> {
        let addr = format!("127.0.0.1:{port}");
        let http_port = StdListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let exe = std::env::current_exe().context("find the weir executable")?;
        let log_file = File::create(&log).with_context(|| format!("create {}", log.display()))?;
        let child = Command::new(&exe)
            .arg("serve")
            .arg("--listen")
            .arg(&addr)
            .arg("--data-dir")
            .arg(data_dir)
            // A benchmark of the Kafka path: no SQL listener to collide with a running one.
            .arg("--sql-listen=")
            // Metrics on a port of its own (the scrape-cost benchmark scrapes it).
            .arg(format!("--http-listen=127.0.0.1:{http_port}"))
            .args(settings.iter().map(|s| format!("--set={s}")))
            .env("WEIR_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("start {} serve", exe.display()))?;
        Ok(Started {
            child,
            addr,
            http_addr: format!("127.0.0.1:{http_port}"),
            log,
            data_dir: data_dir.to_path_buf(),
        })
    }

    /// Stops the broker the way an operator does (SIGTERM) and waits for it to exit.
    pub(super) fn terminate(&mut self) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .context("run kill -TERM")?;
        if !status.success() {
            bail!("kill -TERM {} failed", self.child.id());
        }
        let status = self.child.wait()?;
        if !status.success() {
            bail!(
                "the broker exited with {status} after SIGTERM; see {}",
                self.log.display()
            );
        }
        Ok(())
    }

    /// SIGKILL: no shutdown work at all, like a crash of the process.
    pub(super) fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The broker under test.
pub(super) enum Broker {
    /// Its address, and its process id when given.
    External(String, Option<u32>),
    Started(Started),
}

impl Broker {
    /// Starts `weir serve` over `data_dir` and waits until it accepts connections.
    pub(super) fn start(data_dir: &Path) -> anyhow::Result<Broker> {
        let mut broker = Broker::Started(Started::spawn(data_dir)?);
        broker.wait_until_listening()?;
        Ok(broker)
    }

    /// [`Broker::start`] with `--set` settings; the PLAINTEXT listener on `port`.
    pub(super) fn start_with(
        data_dir: &Path,
        port: u16,
        settings: &[String],
    ) -> anyhow::Result<Broker> {
        let mut broker = Broker::Started(Started::spawn_with(data_dir, port, settings)?);
        broker.wait_until_listening()?;
        Ok(broker)
    }

    pub(super) fn wait_until_listening(&mut self) -> anyhow::Result<()> {
        let Broker::Started(Started {
            child, addr, log, ..
        }) = self
        else {
            return Ok(());
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait()? {
                bail!("the broker exited with {status}; see {}", log.display());
            }
            if std::net::TcpStream::connect(addr.as_str()).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the broker did not listen on {addr} within 30 s; see {}",
                    log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(super) fn addr(&self) -> String {
        match self {
            Broker::External(addr, _) | Broker::Started(Started { addr, .. }) => addr.clone(),
        }
    }

    pub(super) fn describe(&self) -> String {
        match self {
            Broker::External(addr, _) => {
                format!("broker at {addr}, not started by bench: its disk may differ")
            }
            Broker::Started(Started { addr, .. }) => format!("broker started by bench on {addr}"),
        }
    }

    /// Where a started broker writes its output.
    pub(super) fn log(&self) -> Option<&Path> {
        match self {
            Broker::External(..) => None,
            Broker::Started(started) => Some(&started.log),
        }
    }

    /// The data directory of a broker bench started.
    pub(super) fn data_dir(&self) -> Option<&Path> {
        match self {
            Broker::External(..) => None,
            Broker::Started(started) => Some(&started.data_dir),
        }
    }

    /// The broker's process id: bench's child, or `--broker-pid`.
    /// The HTTP listener of a broker bench started.
    pub(super) fn http_addr(&self) -> Option<String> {
        match self {
            Broker::External(..) => None,
            Broker::Started(s) => Some(s.http_addr.clone()),
        }
    }

    pub(super) fn pid(&self) -> Option<u32> {
        match self {
            Broker::External(_, pid) => *pid,
            Broker::Started(started) => Some(started.child.id()),
        }
    }

    pub(super) fn cpu_seconds(&self) -> Option<f64> {
        process_cpu_seconds(&self.pid()?.to_string())
    }

    /// Runs `work`, adding the CPU time both processes spent on it.
    pub(super) async fn measure(
        &self,
        work: impl std::future::Future<Output = anyhow::Result<Measured>>,
    ) -> anyhow::Result<Measured> {
        let broker_before = self.cpu_seconds();
        let client_before = process_cpu_seconds("self");
        let mut measured = work.await?;
        measured.broker_cpu = cpu_delta(broker_before, self.cpu_seconds());
        measured.client_cpu = cpu_delta(client_before, process_cpu_seconds("self"));
        Ok(measured)
    }
}

/// The directory for the disk test and the broker's data; a temporary one is removed when
/// this is dropped.
pub(super) struct WorkDir {
    pub(super) path: PathBuf,
    remove: bool,
}

impl WorkDir {
    pub(super) fn new(given: Option<PathBuf>) -> anyhow::Result<WorkDir> {
        let (path, remove) = match given {
            Some(path) => (path, false),
            None => (
                std::env::temp_dir().join(format!("weir-bench-{}", std::process::id())),
                true,
            ),
        };
        std::fs::create_dir_all(&path).with_context(|| format!("create {}", path.display()))?;
        Ok(WorkDir { path, remove })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
