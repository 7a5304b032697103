//! A real S3 HTTP server inside the process, for tests and benchmarks (feature `test-server`).
//! **Not a stable API.**
//!
//! It is `s3s` with the `s3s-fs` backend over a directory, listening on `127.0.0.1:0`, checking
//! SigV4 signatures against one access key. Clients reach it through object_store's `AmazonS3`
//! exactly as they would reach a remote bucket: HTTP, path-style requests, real signatures.
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use collab_store_s3::ObjectBlobStore;
//! use collab_store_s3::test_server::TestS3Server;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let server = TestS3Server::start(dir.path()).await.unwrap();
//! let store = ObjectBlobStore::s3(&server.config()).unwrap().build().unwrap();
//! # drop(store);
//! # });
//! ```

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;
use tokio::task::{AbortHandle, JoinSet};

use crate::S3Config;

/// The bucket every test server has.
pub const BUCKET: &str = "collab-test";
/// The access key id the server accepts.
pub const ACCESS_KEY_ID: &str = "collab-test-key";
/// The secret key the server accepts.
pub const SECRET_ACCESS_KEY: &str = "collab-test-secret";

/// An S3 server on `127.0.0.1:0`, serving [`BUCKET`] from a directory. Stopped on drop.
#[derive(Debug)]
pub struct TestS3Server {
    addr: SocketAddr,
    root: PathBuf,
    stopped: Arc<AtomicBool>,
    accept: AbortHandle,
    connections: Arc<Mutex<JoinSet<()>>>,
}

impl TestS3Server {
    /// Starts a server keeping its bucket in `root` (which must exist). A server started again
    /// on the same `root` sees what the last one stored, incomplete uploads included.
    pub async fn start(root: impl AsRef<Path>) -> io::Result<Self> {
        let root = root.as_ref().to_path_buf();
        std::fs::create_dir_all(root.join(BUCKET))?;
        let fs = s3s_fs::FileSystem::new(&root).map_err(|e| io::Error::other(format!("{e:?}")))?;
        let service = {
            let mut builder = S3ServiceBuilder::new(fs);
            builder.set_auth(SimpleAuth::from_single(ACCESS_KEY_ID, SECRET_ACCESS_KEY));
            builder.build()
        };
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let stopped = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Mutex::new(JoinSet::new()));
        let accept = {
            let stopped = stopped.clone();
            let connections = connections.clone();
            tokio::spawn(async move {
                let http = ConnBuilder::new(TokioExecutor::new());
                while let Ok((socket, _)) = listener.accept().await {
                    if stopped.load(Ordering::Acquire) {
                        break;
                    }
                    let connection = http
                        .serve_connection(TokioIo::new(socket), service.clone())
                        .into_owned();
                    let mut connections = connections.lock().unwrap_or_else(PoisonError::into_inner);
                    while connections.try_join_next().is_some() {}
                    connections.spawn(async move {
                        let _ = connection.await;
                    });
                }
            })
            .abort_handle()
        };
        Ok(Self {
            addr,
            root,
            stopped,
            accept,
            connections,
        })
    }

    /// `http://127.0.0.1:{port}`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Settings that reach [`BUCKET`] on this server with the right credentials, and retry
    /// a failed request only briefly (a test that stops the server should not wait minutes).
    pub fn config(&self) -> S3Config {
        S3Config::new(BUCKET)
            .endpoint(self.endpoint())
            .allow_http(true)
            .credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY)
            .retries(1, Duration::from_secs(2))
    }

    /// The directory the server keeps its state in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file names of multipart uploads begun and neither completed nor aborted (s3s-fs
    /// keeps them beside the bucket, and has no `ListMultipartUploads`).
    pub fn incomplete_uploads(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.root)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name.starts_with(".upload") {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Stops accepting and cuts every open connection, as a crashed server would.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.accept.abort();
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .abort_all();
    }
}

impl Drop for TestS3Server {
    fn drop(&mut self) {
        self.stop();
    }
}
