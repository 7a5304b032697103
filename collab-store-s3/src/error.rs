//! The store's private errors, mapped up to [`collab_core::Error`] kinds.

use collab_core::Error;

/// The backend name the core errors carry.
pub(crate) const BACKEND: &str = "object store";

/// What went wrong below the [`BlobStore`](collab_core::BlobStore) contract. Kept as the source
/// of the core error, so a host can walk the chain down to object_store's own error.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// An object_store call failed.
    #[error("{operation} failed: {source}")]
    ObjectStore {
        /// What we asked of the store.
        operation: &'static str,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
    /// The digest of a multipart upload stopped before the last part (its own error is the
    /// one reported).
    #[error("the upload's digest stopped")]
    DigestStopped,
    /// A part upload task ended without an answer (cancelled or panicked).
    #[error("a part upload task ended abnormally: {0}")]
    PartTask(#[from] tokio::task::JoinError),
    /// The store returned other bytes than asked for.
    #[error("the store returned bytes {actual:?} of a {size}-byte object for bytes {expected:?}")]
    UnexpectedRange {
        /// The range asked for.
        expected: std::ops::Range<u64>,
        /// The range returned.
        actual: std::ops::Range<u64>,
        /// The object's size.
        size: u64,
    },
}

impl StoreError {
    /// Wraps an object_store error with what we were doing.
    pub(crate) fn store(operation: &'static str) -> impl FnOnce(object_store::Error) -> Self {
        move |source| Self::ObjectStore { operation, source }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        // Refused credentials are the deployment's fault and need an operator, so they get a
        // kind of their own; everything else is a backend failure with its source kept.
        let credentials = matches!(
            &e,
            StoreError::ObjectStore {
                source: object_store::Error::Unauthenticated { .. } | object_store::Error::PermissionDenied { .. },
                ..
            }
        );
        if credentials {
            Error::BackendCredentials {
                backend: BACKEND,
                source: Box::new(e),
            }
        } else {
            Error::backend(BACKEND, e)
        }
    }
}

/// True when the store says the object is not there.
pub(crate) fn is_not_found(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. })
}
