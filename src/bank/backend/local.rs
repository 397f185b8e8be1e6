//! A bank in a local directory: the default backend.
//!
//! Layout: `<root>/config`, `<root>/data/<2 hex>/<name>`, `<root>/index/<name>`,
//! `<root>/checkpoints/<name>`, `<root>/restores/<name>`, `<root>/locks/<name>`,
//! `<root>/quarantine/<name>`. Packs are fanned out into 256 sub-folders so that no folder
//! grows past a few thousand entries; a file in `data/` whose name is no hex digest is
//! listed as it is (so that verify names it and repair can move it aside).
//!
//! Writes are atomic: the data goes to a temporary file in the same folder, is fsynced,
//! renamed over the final name, and the folder is fsynced. A crash leaves at worst a
//! `.tmp-*` file, which `list` ignores and `bank gc` removes once it is older than any lease.

use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use super::{Backend, BackendError, Kind, ObjectInfo};

/// Prefix of temporary files; `list` skips them.
const TMP_PREFIX: &str = ".tmp-";

/// A bank stored in a local directory.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    root: PathBuf,
}

impl LocalBackend {
    /// Opens (and creates, if needed) a bank directory.
    ///
    /// # Arguments
    /// * `root` - the bank's directory; a `file://` URL is accepted too.
    pub fn new(root: impl AsRef<Path>) -> Result<Self, BackendError> {
        let root = root.as_ref().to_path_buf();
        std::fs::create_dir_all(&root).map_err(|e| BackendError::Config {
            location: root.display().to_string(),
            reason: format!("cannot create the bank directory: {e}"),
        })?;
        Ok(Self { root })
    }

    /// The bank's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn folder(&self, kind: Kind) -> PathBuf {
        self.root.join(kind.folder())
    }

    fn path(&self, kind: Kind, name: &str) -> Result<PathBuf, BackendError> {
        if name.is_empty()
            || name.starts_with('.')
            || name.contains(['/', '\\', '\0'])
            || name == ".."
        {
            return Err(BackendError::Config {
                location: self.location(),
                reason: format!("invalid {kind} name {name:?}"),
            });
        }
        let mut path = self.folder(kind);
        if let Some(fan) = fan_out_folder(kind, name) {
            path.push(fan);
        }
        path.push(name);
        Ok(path)
    }

    fn io_error(
        &self,
        op: &'static str,
        kind: Kind,
        name: &str,
        e: std::io::Error,
    ) -> BackendError {
        if e.kind() == std::io::ErrorKind::NotFound && op != "put" {
            return BackendError::NotFound {
                location: self.location(),
                kind,
                name: name.to_string(),
            };
        }
        // A local file system fails for good, but for these.
        let transient = matches!(
            e.kind(),
            std::io::ErrorKind::Interrupted
                | std::io::ErrorKind::TimedOut
                | std::io::ErrorKind::WouldBlock
        );
        BackendError::Io {
            location: self.location(),
            op,
            kind,
            name: name.to_string(),
            source: Box::new(e),
            transient,
        }
    }
}

/// The sub-folder a pack lives in: the first two digits of its (hex) name. A name that is
/// no hex digest (a file that is not podbank's) sits in the kind's folder itself, so that
/// it can still be listed, read and moved aside.
fn fan_out_folder(kind: Kind, name: &str) -> Option<&str> {
    let hex = name.len() >= 2 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    (kind == Kind::Pack && hex).then(|| &name[..2])
}

fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("path has no parent folder"))?;
    std::fs::create_dir_all(dir)?;
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| std::io::Error::other("path has no file name"))?;
    let tmp = dir.join(format!("{TMP_PREFIX}{file_name}-{}", rand::random::<u64>()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn read_range(path: &Path, offset: u64, length: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    if offset.saturating_add(length) > size {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("range {offset}+{length} is past the end of the object ({size} bytes)"),
        ));
    }
    file.seek(SeekFrom::Start(offset))?;
    let len = usize::try_from(length).map_err(std::io::Error::other)?;
    let mut buf = vec![0; len];
    file.read_exact(&mut buf)?;
    Ok(buf)
}

fn list_folder(dir: &Path, fan_out: bool, out: &mut Vec<ObjectInfo>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') {
            continue;
        }
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            if fan_out {
                let mut inner = Vec::new();
                list_folder(&entry.path(), false, &mut inner)?;
                // Only what `path` finds there again.
                out.extend(
                    inner
                        .into_iter()
                        .filter(|o| fan_out_folder(Kind::Pack, &o.name) == Some(name)),
                );
            }
            continue;
        }
        if file_type.is_file() {
            let meta = entry.metadata()?;
            out.push(ObjectInfo {
                name: name.to_string(),
                size: meta.len(),
                modified: meta.modified().ok(),
            });
        }
    }
    Ok(())
}

/// Removes `.tmp-*` files under `dir` (and its sub-folders) last written before `cutoff`.
fn remove_temporaries(dir: &Path, cutoff: std::time::SystemTime) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            removed += remove_temporaries(&entry.path(), cutoff)?;
            continue;
        }
        let is_tmp = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(TMP_PREFIX));
        let old = entry.metadata()?.modified().is_ok_and(|m| m < cutoff);
        if file_type.is_file() && is_tmp && old {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

#[async_trait]
impl Backend for LocalBackend {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    async fn put(&self, kind: Kind, name: &str, data: Bytes) -> Result<(), BackendError> {
        let path = self.path(kind, name)?;
        tokio::task::spawn_blocking(move || write_atomic(&path, &data))
            .await
            .map_err(|e| self.io_error("put", kind, name, std::io::Error::other(e)))?
            .map_err(|e| self.io_error("put", kind, name, e))
    }

    async fn get(&self, kind: Kind, name: &str) -> Result<Bytes, BackendError> {
        let path = self.path(kind, name)?;
        tokio::fs::read(&path)
            .await
            .map(Bytes::from)
            .map_err(|e| self.io_error("get", kind, name, e))
    }

    async fn get_range(
        &self,
        kind: Kind,
        name: &str,
        offset: u64,
        length: u64,
    ) -> Result<Bytes, BackendError> {
        let path = self.path(kind, name)?;
        tokio::task::spawn_blocking(move || read_range(&path, offset, length))
            .await
            .map_err(|e| self.io_error("get_range", kind, name, std::io::Error::other(e)))?
            .map(Bytes::from)
            .map_err(|e| self.io_error("get_range", kind, name, e))
    }

    async fn list(&self, kind: Kind) -> Result<Vec<ObjectInfo>, BackendError> {
        let dir = self.folder(kind);
        let fan_out = kind == Kind::Pack;
        let result = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            if kind == Kind::Config {
                // The config object sits at the root, beside the folders.
                match std::fs::metadata(dir.join("config")) {
                    Ok(meta) => out.push(ObjectInfo {
                        name: "config".to_string(),
                        size: meta.len(),
                        modified: meta.modified().ok(),
                    }),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
                return Ok(out);
            }
            list_folder(&dir, fan_out, &mut out).map(|()| out)
        })
        .await
        .map_err(|e| self.io_error("list", kind, "", std::io::Error::other(e)))?;
        result.map_err(|e| self.io_error("list", kind, "", e))
    }

    async fn delete(&self, kind: Kind, name: &str) -> Result<(), BackendError> {
        let path = self.path(kind, name)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io_error("delete", kind, name, e)),
        }
    }

    async fn remove_leftovers(
        &self,
        older_than: std::time::Duration,
    ) -> Result<usize, BackendError> {
        let root = self.root.clone();
        let cutoff = std::time::SystemTime::now()
            .checked_sub(older_than)
            .unwrap_or(std::time::UNIX_EPOCH);
        tokio::task::spawn_blocking(move || remove_temporaries(&root, cutoff))
            .await
            .map_err(|e| self.io_error("delete", Kind::Pack, ".tmp-*", std::io::Error::other(e)))?
            .map_err(|e| self.io_error("delete", Kind::Pack, ".tmp-*", e))
    }
}
