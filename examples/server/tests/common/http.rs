//! The one HTTP client of the tests that talk to a server over the wire.

use std::time::Duration;

use axum::http::{StatusCode, header};
use serde_json::{Value, json};

use super::Reply;

/// A client for a server at `base` (`http://127.0.0.1:PORT`); paths are relative to it.
#[derive(Clone, Debug)]
pub struct Http {
    client: reqwest::Client,
    pub base: String,
}

impl Http {
    /// A client that gives up on an answer after 30 s.
    pub fn new(base: &str) -> Self {
        Self::with_timeout(base, Duration::from_secs(30))
    }

    /// A client that gives up on an answer after `timeout` (long, for live streams).
    pub fn with_timeout(base: &str, timeout: Duration) -> Self {
        Self {
            client: collab_notify::http::client(timeout).unwrap(),
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// The same client for a server at another `base`.
    pub fn to(&self, base: &str) -> Self {
        Self {
            client: self.client.clone(),
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// One request with `headers` and `body`; its answer read whole, or the error if none came
    /// (the server is down, or died meanwhile).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Reply, reqwest::Error> {
        let response = self.open(method, path, headers, body).await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await?.to_vec();
        Ok(Reply { status, headers, body })
    }

    /// One request whose answer is read as it comes (live events): the response.
    pub async fn open(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        // The server refuses state changes naming no origin, as a browser's would: a test's own
        // `origin` replaces this one.
        if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("origin")) {
            request = request.header("origin", self.base.as_str());
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(body).send().await
    }

    /// A JSON request with maybe a cookie; an answer must come.
    pub async fn call(&self, method: &str, path: &str, cookie: Option<&str>, body: Option<Value>) -> Reply {
        let mut headers = vec![(header::CONTENT_TYPE.as_str(), "application/json")];
        headers.extend(cookie.map(|cookie| (header::COOKIE.as_str(), cookie)));
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        self.send(method, path, &headers, body)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: no answer: {e}"))
    }

    /// Signs `agent` in: the agent's cookie (`collab_agent=…`).
    pub async fn sign_in(&self, agent: &str, password: &str) -> String {
        let body = json!({"agent": agent, "password": password});
        let reply = self.call("POST", "/api/session", None, Some(body)).await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{:?}", reply.json());
        reply.cookie_named("collab_agent").unwrap()
    }
}
