//! A small HTTP/1.1 client over hyper: JSON calls with a cookie, and streamed answers for live
//! events. Keep-alive connections are pooled, so paced posts reuse a handful of sockets.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, COOKIE, ORIGIN, SET_COOKIE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::LoadError;

/// The longest a setup call or a post may take before it counts as failed.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A client of one server.
#[derive(Clone, Debug)]
pub(crate) struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

/// A whole answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    /// The first cookie the answer sets, as `name=value`.
    pub(crate) cookie: Option<String>,
    pub(crate) body: Bytes,
}

impl Reply {
    /// The body as JSON, or an error naming `what` when the status is not `expected`.
    pub(crate) fn json(&self, what: &str, expected: StatusCode) -> Result<Value, LoadError> {
        if self.status != expected {
            return Err(LoadError::Status {
                what: what.to_owned(),
                status: self.status.as_u16(),
                body: String::from_utf8_lossy(&self.body).chars().take(200).collect(),
            });
        }
        serde_json::from_slice(&self.body).map_err(|_| LoadError::Answer {
            what: what.to_owned(),
            reason: "the body is not JSON".to_owned(),
        })
    }
}

impl Http {
    /// A client of the server at `base` (`http://127.0.0.1:8080`).
    pub(crate) fn new(base: &str) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// Sends a request and returns the answer with its body still streaming.
    pub(crate) async fn open(
        &self,
        method: Method,
        path: &str,
        cookie: Option<&str>,
        headers: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Response<Incoming>, LoadError> {
        // The server refuses state changes that name no origin: this client names the server's.
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(ORIGIN, self.base.as_str());
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let body = match body {
            Some(json) => {
                request = request.header(CONTENT_TYPE, "application/json");
                Full::new(Bytes::from(json.to_string()))
            }
            None => Full::new(Bytes::new()),
        };
        let request = request.body(body).map_err(|e| LoadError::Answer {
            what: path.to_owned(),
            reason: format!("cannot build the request: {e}"),
        })?;
        self.client.request(request).await.map_err(|e| LoadError::Request {
            what: path.to_owned(),
            reason: e.to_string(),
        })
    }

    /// Sends a JSON request and reads the whole answer, within [`CALL_TIMEOUT`].
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        cookie: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Reply, LoadError> {
        let call = async {
            let response = self.open(method, path, cookie, &[], body).await?;
            let status = response.status();
            let cookie = response
                .headers()
                .get(SET_COOKIE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(';').next())
                .map(str::to_owned);
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| LoadError::Request {
                    what: path.to_owned(),
                    reason: e.to_string(),
                })?
                .to_bytes();
            Ok(Reply { status, cookie, body })
        };
        tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .map_err(|_| LoadError::Timeout {
                what: path.to_owned(),
                after: CALL_TIMEOUT,
            })?
    }
}
