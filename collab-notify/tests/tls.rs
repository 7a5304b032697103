//! The HTTP providers speak TLS with ring and verify certificates: a server whose certificate
//! chains to no trusted root is refused before anything is sent.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::sync::Arc;

use collab_core::notify::NotifyError;
use collab_notify::twilio::TwilioSms;
use common::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// A TLS server on 127.0.0.1 with the test certificate (its CA is not in the system's roots).
/// Returns its port and whether it read any application data.
fn tls_server() -> (u16, std::sync::mpsc::Receiver<usize>) {
    let certs = vec![CertificateDer::from_pem_file(format!("{FIXTURES}/server.pem")).unwrap()];
    let key = PrivateKeyDer::from_pem_file(format!("{FIXTURES}/server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        let mut conn = rustls::ServerConnection::new(Arc::new(config)).unwrap();
        let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
        let mut buf = [0u8; 1024];
        let read = tls.read(&mut buf).unwrap_or(0);
        let _ = tx.send(read);
    });
    (port, rx)
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_before_anything_is_sent() {
    let (port, read) = tls_server();
    let config = Providers::at_url(&format!("https://127.0.0.1:{port}")).twilio();
    let error = sms_error(&TwilioSms::new(config).unwrap()).await;
    assert!(matches!(error, NotifyError::Transient { .. }), "{error:?}");
    assert!(
        format!("{error:?}").contains("InvalidCertificate"),
        "refused for its certificate: {error:?}"
    );
    assert_eq!(read.recv().unwrap(), 0, "no request reached the server");
}
