//! The security stores' JSON files under `<data-dir>/meta` (`acls.json`,
//! `scram-credentials.json`): read whole when the store opens, written whole on each change
//! through `weir_storage::write_atomically` (temp file, fsync, rename, fsync dir).

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Why a store's file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum MetaFileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is corrupt: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot encode {file}: {source}")]
    Encode {
        file: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write {file}: {source}")]
    Write {
        file: &'static str,
        #[source]
        source: weir_storage::StorageError,
    },
}

/// `dir/file` decoded; `None` when there is no such file yet.
pub fn load<T: DeserializeOwned>(dir: &Path, file: &str) -> Result<Option<T>, MetaFileError> {
    let path = dir.join(file);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| MetaFileError::Corrupt { path, source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(MetaFileError::Read { path, source }),
    }
}

/// Writes `value` as `dir/file`, creating `dir` first.
pub fn save<T: Serialize>(dir: &Path, file: &'static str, value: &T) -> Result<(), MetaFileError> {
    std::fs::create_dir_all(dir).map_err(|source| MetaFileError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let bytes = serde_json::to_vec_pretty(value)
        .map_err(|source| MetaFileError::Encode { file, source })?;
    weir_storage::write_atomically(dir, file, &bytes)
        .map_err(|source| MetaFileError::Write { file, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_round_trips_and_damage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let meta = dir.path().join("meta");
        assert_eq!(load::<Vec<u32>>(&meta, "x.json").unwrap(), None);
        save(&meta, "x.json", &vec![1u32, 2]).unwrap();
        assert_eq!(load::<Vec<u32>>(&meta, "x.json").unwrap(), Some(vec![1, 2]));
        std::fs::write(meta.join("x.json"), b"[1,").unwrap();
        let err = load::<Vec<u32>>(&meta, "x.json").unwrap_err();
        assert!(matches!(&err, MetaFileError::Corrupt { path, .. } if path.ends_with("x.json")));
        assert!(err.to_string().contains("x.json is corrupt"), "{err}");
    }
}
