//! AMQP over TLS (`amqps://`): intercomm's processes reach the broker through a TLS front that
//! holds a certificate from a private CA made for the run. They trust that CA when `SSL_CERT_FILE`
//! names it, and refuse the server, with an error saying why, when it does not. The same front
//! puts TLS before Redis in `scaleout::gateway_reaches_redis_over_tls`.

use std::sync::Arc;

use intercomm_core::{Context, RpcError, Worker};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::cli::intercomm_with;
use crate::helpers::{spawn_worker, unique};

/// A TLS listener on a free port for `localhost` that forwards each connection to a plain port
/// on 127.0.0.1 (the broker's, Redis'), as a TLS-terminating load balancer does; its CA
/// certificate is in `ca_file`.
pub(crate) struct TlsFront {
    pub(crate) port: u16,
    pub(crate) ca_file: std::path::PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl TlsFront {
    pub(crate) async fn start(upstream: u16) -> Self {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);
        let server_key = KeyPair::generate().expect("server key");
        let server = CertificateParams::new(vec!["localhost".to_owned()])
            .expect("server params")
            .signed_by(&server_key, &issuer)
            .expect("server certificate");
        let ca_file = std::env::temp_dir().join(format!("{}.pem", unique("intercomm_ca")));
        std::fs::write(&ca_file, ca.pem()).expect("CA file written");

        let config = ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(server.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
            )
            .expect("TLS server config");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let port = listener.local_addr().expect("address").port();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that refuses the certificate ends the handshake: nothing to forward.
                    let Ok(mut tls) = acceptor.accept(client).await else {
                        return;
                    };
                    let Ok(mut plain) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        Self {
            port,
            ca_file,
            task,
        }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.ca_file);
    }
}

/// `intercomm call` over `amqps://` reaches a worker when `SSL_CERT_FILE` names the CA, and
/// without it fails at once with a certificate error, not a hang or a plain-text fallback.
#[tokio::test]
async fn amqps_is_verified_against_ssl_cert_file() {
    let name = unique("tls");
    let method = format!("{name}.echo");
    let echo = |_: Context, params: serde_json::Value| async move { Ok::<_, RpcError>(params) };
    let _worker = spawn_worker(Worker::new(&name).method(method.clone(), echo)).await;
    let front = TlsFront::start(5672).await;
    let url = format!("amqps://guest:guest@localhost:{}/%2f", front.port);
    let ca_file = front.ca_file.display().to_string();

    let output = intercomm_with(
        &["call", &method, r#"{"over":"tls"}"#],
        &[
            ("AMQP_URL", url.as_str()),
            ("SSL_CERT_FILE", ca_file.as_str()),
        ],
    )
    .await;
    assert!(output.status.success(), "{output:?}");
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("prints JSON");
    assert_eq!(printed, json!({"over": "tls"}));

    let output = intercomm_with(&["call", &method, "{}"], &[("AMQP_URL", url.as_str())]).await;
    assert!(
        !output.status.success(),
        "an unknown CA is refused: {output:?}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr).to_lowercase();
    assert!(
        stderr.contains("certificate"),
        "the error names the certificate: {stderr}"
    );
}
