//! How to reach a store: S3 settings, local-file durability.

use std::time::Duration;

use collab_core::Error;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::{BackoffConfig, RetryConfig};
use secrecy::{ExposeSecret, SecretString};

/// What a successful upload to local files promises.
///
/// | `Durability` | the process is killed after `put` returned | the machine loses power after `put` returned |
/// |---|---|---|
/// | [`Synced`](Durability::Synced) (default) | the document survives | the document survives |
/// | [`Buffered`](Durability::Buffered) | the document survives | the document may be lost, or (never partly) missing |
///
/// Either way a reader never sees a partly written document: uploads are written to a staging
/// file and renamed into place. Rooms record a document's event in the room store *after* its
/// upload returned, so with `Buffered` a power loss can leave an event pointing to a lost
/// document; `Synced` closes that gap at the price of an `fsync` of the file and its directory
/// per upload. (A large `Synced` upload flushes each part as it is written, while the next are
/// read and hashed, instead of the whole file at the end: on Unix, through this crate's own
/// multipart upload, with object_store's staging-file naming.)
///
/// Remote stores (S3, GCS, Azure) acknowledge an upload only once they have stored it durably;
/// this setting does not apply to them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// `fsync` the file and its directory before an upload returns.
    #[default]
    Synced,
    /// Leave the bytes to the operating system's cache: faster, not power-loss safe.
    Buffered,
}

/// How to reach an S3 bucket (Amazon S3 or an S3-compatible server). `Debug` never prints the
/// secret key or the session token.
///
/// ```
/// use collab_store_s3::S3Config;
///
/// let config = S3Config::new("documents")
///     .region("eu-west-1")
///     .credentials("AKIAEXAMPLE", "very secret");
/// assert!(!format!("{config:?}").contains("very secret"));
/// ```
#[derive(Clone, Debug)]
pub struct S3Config {
    bucket: String,
    region: String,
    endpoint: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<SecretString>,
    session_token: Option<SecretString>,
    virtual_hosted_style: bool,
    allow_http: bool,
    max_retries: usize,
    retry_timeout: Duration,
}

impl S3Config {
    /// The bucket `bucket` in `us-east-1` on Amazon S3, path-style requests over HTTPS, the
    /// credentials found by the default AWS chain (instance metadata, web identity…) unless
    /// [`credentials`](Self::credentials) are given.
    pub fn new(bucket: impl Into<String>) -> Self {
        Self {
            bucket: bucket.into(),
            region: "us-east-1".to_owned(),
            endpoint: None,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            virtual_hosted_style: false,
            allow_http: false,
            max_retries: 10,
            retry_timeout: Duration::from_secs(180),
        }
    }

    /// Reads the settings of `bucket` from the standard AWS variables: `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` (or `AWS_DEFAULT_REGION`),
    /// `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT`), `AWS_ALLOW_HTTP` and
    /// `AWS_VIRTUAL_HOSTED_STYLE_REQUEST` (`true`/`false`). Unset variables keep the defaults of
    /// [`new`](Self::new); a boolean that is neither is [`Error::Invalid`] naming the variable.
    pub fn from_env(bucket: impl Into<String>) -> Result<Self, Error> {
        Self::from_lookup(bucket, |name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) over any lookup, so it can be tested without the process
    /// environment.
    pub(crate) fn from_lookup(
        bucket: impl Into<String>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        let var = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let flag = |name: &'static str| -> Result<Option<bool>, Error> {
            match var(name).map(|v| v.to_ascii_lowercase()) {
                None => Ok(None),
                Some(v) if v == "true" || v == "1" => Ok(Some(true)),
                Some(v) if v == "false" || v == "0" => Ok(Some(false)),
                Some(_) => Err(Error::invalid(name, "must be true or false")),
            }
        };
        let mut config = Self::new(bucket);
        if let Some(region) = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")) {
            config.region = region;
        }
        config.endpoint = var("AWS_ENDPOINT_URL").or_else(|| var("AWS_ENDPOINT"));
        config.access_key_id = var("AWS_ACCESS_KEY_ID");
        config.secret_access_key = var("AWS_SECRET_ACCESS_KEY").map(SecretString::from);
        config.session_token = var("AWS_SESSION_TOKEN").map(SecretString::from);
        if let Some(allow) = flag("AWS_ALLOW_HTTP")? {
            config.allow_http = allow;
        }
        if let Some(virtual_hosted) = flag("AWS_VIRTUAL_HOSTED_STYLE_REQUEST")? {
            config.virtual_hosted_style = virtual_hosted;
        }
        Ok(config)
    }

    /// The region (default `us-east-1`).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = region.into();
        self
    }

    /// The server's URL, for S3-compatible servers (MinIO, Ceph, R2…): `https://host:port`.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Static credentials: the access key id and its secret.
    pub fn credentials(mut self, access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        self.access_key_id = Some(access_key_id.into());
        self.secret_access_key = Some(SecretString::from(secret_access_key.into()));
        self
    }

    /// A session token, with temporary [`credentials`](Self::credentials).
    pub fn session_token(mut self, token: impl Into<String>) -> Self {
        self.session_token = Some(SecretString::from(token.into()));
        self
    }

    /// Virtual-hosted-style requests (`https://bucket.host/key`) instead of path-style
    /// (`https://host/bucket/key`, the default, which S3-compatible servers expect).
    pub fn virtual_hosted_style(mut self, on: bool) -> Self {
        self.virtual_hosted_style = on;
        self
    }

    /// Allows an `http://` endpoint (default: HTTPS only). For test servers and trusted
    /// networks: over plain HTTP the documents travel in clear.
    pub fn allow_http(mut self, on: bool) -> Self {
        self.allow_http = on;
        self
    }

    /// How often a failed request is retried (default 10), and for how long at most (default
    /// 3 minutes).
    pub fn retries(mut self, max_retries: usize, retry_timeout: Duration) -> Self {
        self.max_retries = max_retries;
        self.retry_timeout = retry_timeout;
        self
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Checks the settings and builds object_store's client.
    pub(crate) fn build(&self) -> Result<AmazonS3, Error> {
        let bucket_ok = (3..=63).contains(&self.bucket.len())
            && self
                .bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !bucket_ok {
            return Err(Error::invalid(
                "bucket",
                "must be 3 to 63 lowercase letters, digits, `.` or `-`",
            ));
        }
        if self.region.is_empty() {
            return Err(Error::invalid("region", "must not be empty"));
        }
        if let Some(endpoint) = &self.endpoint {
            let url = url::Url::parse(endpoint).map_err(|e| Error::invalid("endpoint", e.to_string()))?;
            match url.scheme() {
                "https" => {}
                "http" if self.allow_http => {}
                "http" => return Err(Error::invalid("endpoint", "is http://, but allow_http is off")),
                _ => return Err(Error::invalid("endpoint", "must be an http:// or https:// URL")),
            }
        }
        if self.access_key_id.is_some() != self.secret_access_key.is_some() {
            return Err(Error::invalid(
                "credentials",
                "need both the access key id and the secret access key",
            ));
        }
        if self.session_token.is_some() && self.access_key_id.is_none() {
            return Err(Error::invalid("session_token", "needs credentials"));
        }
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&self.bucket)
            .with_region(&self.region)
            .with_virtual_hosted_style_request(self.virtual_hosted_style)
            .with_allow_http(self.allow_http)
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: self.max_retries,
                retry_timeout: self.retry_timeout,
            });
        if let Some(endpoint) = &self.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let (Some(id), Some(secret)) = (&self.access_key_id, &self.secret_access_key) {
            builder = builder
                .with_access_key_id(id)
                .with_secret_access_key(secret.expose_secret());
        }
        if let Some(token) = &self.session_token {
            builder = builder.with_token(token.expose_secret());
        }
        builder.build().map_err(|e| Error::invalid("s3", e.to_string()))
    }
}

#[cfg(test)]
// Tests fail by panicking.
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn secrets_never_print() {
        let config = S3Config::new("bucket")
            .credentials("AKIDPUBLIC", "s3cr3t-key")
            .session_token("t0ken");
        let printed = format!("{config:?}");
        assert!(
            !printed.contains("s3cr3t-key") && !printed.contains("t0ken"),
            "{printed}"
        );
        assert!(printed.contains("AKIDPUBLIC"));
    }

    #[test]
    fn the_environment_fills_the_settings() {
        let config = S3Config::from_lookup(
            "docs",
            env(&[
                ("AWS_DEFAULT_REGION", "eu-west-3"),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
                ("AWS_ALLOW_HTTP", "TRUE"),
                ("AWS_ACCESS_KEY_ID", "id"),
                ("AWS_SECRET_ACCESS_KEY", "secret"),
            ]),
        );
        let config = config.expect("valid environment");
        assert_eq!(config.region, "eu-west-3");
        assert_eq!(config.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert!(config.allow_http && !config.virtual_hosted_style);
        assert!(config.build().is_ok());
    }

    #[test]
    fn bad_settings_name_their_field() {
        let field = |config: S3Config| match config.build() {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(S3Config::new("No_Such")), "bucket");
        assert_eq!(field(S3Config::new("docs").endpoint("http://h:1")), "endpoint");
        assert_eq!(field(S3Config::new("docs").endpoint("not a url")), "endpoint");
        assert_eq!(field(S3Config::new("docs").region("")), "region");
        assert_eq!(field(S3Config::new("docs").session_token("t")), "session_token");
        let flag = S3Config::from_lookup("docs", env(&[("AWS_ALLOW_HTTP", "maybe")]));
        assert!(matches!(
            flag,
            Err(Error::Invalid {
                field: "AWS_ALLOW_HTTP",
                ..
            })
        ));
    }
}
