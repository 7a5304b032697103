//! Multipart uploads to local files with [`Durability::Synced`](crate::Durability::Synced),
//! each part flushed to disk as soon as it is written.
//!
//! object_store's own local multipart upload flushes the whole file once, on completion, after
//! the last part: for a large document that flush is most of the upload's time, and nothing
//! else runs during it. Here each part is flushed by the task that writes it, while the next
//! parts are read and hashed, so that completion has almost nothing left to flush. The steps
//! that make it durable are object_store's: a staging file `{name}#{n}` beside the final name
//! (which object_store's listing skips), new directories fsynced, the file fsynced, renamed
//! into place, and its directory fsynced.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use object_store::{MultipartUpload, PutPayload, PutResult, UploadPart};

/// The store name in object_store errors.
const STORE: &str = "local files";

fn store_error(source: impl std::error::Error + Send + Sync + 'static) -> object_store::Error {
    object_store::Error::Generic {
        store: STORE,
        source: Box::new(source),
    }
}

/// Runs `work` on the blocking pool.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> io::Result<T> + Send + 'static) -> object_store::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(store_error)?
        .map_err(store_error)
}

/// A multipart upload into a staging file beside `dest`.
#[derive(Debug)]
pub(crate) struct SyncedFileUpload {
    file: Arc<File>,
    /// The staging file, until it is renamed to `dest` or removed.
    staging: Option<PathBuf>,
    dest: PathBuf,
    /// Where the next part goes.
    offset: u64,
}

impl SyncedFileUpload {
    /// Creates the staging file for `dest` (and `dest`'s missing directories).
    pub(crate) async fn start(dest: PathBuf) -> object_store::Result<Self> {
        let (file, staging, dest) = blocking(move || {
            let (file, staging) = match create_staging(&dest) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    let parent = dest
                        .parent()
                        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path has no directory"))?;
                    create_dirs_synced(parent)?;
                    create_staging(&dest)?
                }
                created => created?,
            };
            Ok((file, staging, dest))
        })
        .await?;
        Ok(Self {
            file: Arc::new(file),
            staging: Some(staging),
            dest,
            offset: 0,
        })
    }
}

/// Creates `dir` and its missing ancestors, and fsyncs each one whose entries changed, up to
/// the first that existed, so that the new directories survive a power loss.
fn create_dirs_synced(dir: &Path) -> io::Result<()> {
    let mut existing = dir;
    while !existing.exists() {
        match existing.parent() {
            Some(parent) => existing = parent,
            None => break,
        }
    }
    let existing = existing.to_path_buf();
    std::fs::create_dir_all(dir)?;
    for changed in dir.ancestors() {
        File::open(changed)?.sync_all()?;
        if changed == existing {
            break;
        }
    }
    Ok(())
}

/// Creates a new staging file `{dest}#{n}`, with the first `n` not taken.
fn create_staging(dest: &Path) -> io::Result<(File, PathBuf)> {
    for n in 1u32.. {
        let mut staging = dest.as_os_str().to_owned();
        staging.push(format!("#{n}"));
        let staging = PathBuf::from(staging);
        match File::options().read(true).write(true).create_new(true).open(&staging) {
            Ok(file) => return Ok((file, staging)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("no free staging file name"))
}

#[async_trait]
impl MultipartUpload for SyncedFileUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let mut at = self.offset;
        self.offset += data.content_length() as u64;
        let file = self.file.clone();
        Box::pin(blocking(move || {
            for bytes in data.iter() {
                file.write_all_at(bytes, at)?;
                at += bytes.len() as u64;
            }
            // Flushed now, while the next parts are read and hashed.
            file.sync_data()
        }))
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let staging = self
            .staging
            .take()
            .ok_or_else(|| store_error(io::Error::other("upload already ended")))?;
        let (file, dest) = (self.file.clone(), self.dest.clone());
        blocking(move || {
            let published = file
                .sync_all()
                .and_then(|()| std::fs::rename(&staging, &dest))
                .and_then(|()| match dest.parent() {
                    Some(dir) => File::open(dir)?.sync_all(),
                    None => Ok(()),
                });
            if published.is_err() {
                // Best effort: the caller reports the error, and a staging file is never listed.
                let _ = std::fs::remove_file(&staging);
            }
            published
        })
        .await?;
        Ok(PutResult {
            e_tag: None,
            version: None,
            extensions: Default::default(),
        })
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        match self.staging.take() {
            Some(staging) => blocking(move || std::fs::remove_file(staging)).await,
            None => Ok(()),
        }
    }
}

impl Drop for SyncedFileUpload {
    fn drop(&mut self) {
        // Dropped mid-upload (the caller's future was cancelled): remove the staging file.
        if let Some(staging) = self.staging.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn_blocking(move || std::fs::remove_file(staging))),
                Err(_) => drop(std::fs::remove_file(staging)),
            }
        }
    }
}
