//! The data directory's lock: an advisory `flock` on `<data-dir>/.lock`, held for the life of
//! the broker, so that a second broker on the same directory refuses to start instead of
//! writing the same segment files. The kernel drops the lock when the process dies (kill -9
//! included), so a stale `.lock` file never blocks a restart. The holder's pid is written into
//! the file so the refusal can name it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Why the data directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum DirLockError {
    #[error("data directory {dir} is in use by another broker ({holder}; lock file {lock})", dir = .dir.display(), lock = .lock.display())]
    InUse {
        dir: PathBuf,
        lock: PathBuf,
        holder: String,
    },
    #[error("cannot lock {path}: {source}", path = .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Holds the lock until dropped.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Locks `dir` (creating it), or says who holds it.
    pub fn acquire(dir: &Path) -> Result<DirLock, DirLockError> {
        let path = dir.join(".lock");
        let io = |source| DirLockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(DirLockError::InUse {
                    dir: dir.to_path_buf(),
                    lock: path.clone(),
                    holder: describe_holder(text.trim()),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        // Only the holder writes, so the pid in the file is always the holder's (or empty for
        // the instant between the lock and this write). Best effort: the lock needs no space,
        // and a broker must be able to start on a full disk to free it.
        let pid = file
            .set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "{}", std::process::id()));
        if let Err(e) = pid {
            tracing::warn!(path = %path.display(), error = %e, "could not write the pid into the lock file");
        }
        Ok(DirLock { _file: file })
    }
}

/// "pid 1234, weir" from the pid the holder wrote, when it can be read.
fn describe_holder(pid: &str) -> String {
    match pid.parse::<u32>() {
        Ok(pid) => match std::fs::read_to_string(format!("/proc/{pid}/comm")) {
            Ok(name) => format!("pid {pid}, {}", name.trim()),
            Err(_) => format!("pid {pid}"),
        },
        Err(_) => "its pid is not known yet".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let first = DirLock::acquire(&data).expect("first lock");
        let pid = std::fs::read_to_string(data.join(".lock")).expect("lock file");
        assert_eq!(pid.trim(), std::process::id().to_string());
        // flock locks belong to the open file description, so a second open in the same
        // process conflicts just as another process would.
        match DirLock::acquire(&data) {
            Err(e @ DirLockError::InUse { .. }) => {
                let m = e.to_string();
                assert!(m.contains(&format!("pid {}", std::process::id())), "{m}");
                assert!(m.contains(".lock"), "{m}");
            }
            other => panic!("expected InUse, got {other:?}"),
        }
        drop(first);
        let again = DirLock::acquire(&data).expect("lock after release");
        drop(again);
    }
}
