//! (c) The HTTP side: the same echo through the gateway — a real bearer token, schema
//! validation, the job store — as `POST /v1/jobs/{method}` answered 202 (the run lasting until
//! the store recorded every result), the same with `Prefer: wait` (answered once the result is
//! recorded), and as synchronous `POST /v1/rpc`. The gateway is
//! `intercomm gateway` in its own process; this process is only the HTTP load generator.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::bail;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderMap, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use intercomm_gateway::auth::{Secret, mint_hs256};

use super::http_client::HttpPool;
use super::roles::RoleProcess;

/// How long the gateway may take to answer `/readyz` with 200.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long accepted jobs may take, after the last submit, to all have their results recorded.
const RECORD_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the gateway's metrics are read while waiting for the last results.
const RECORD_POLL: Duration = Duration::from_millis(2);
/// The gateway's counter of jobs whose final state is recorded (any outcome).
const COMPLETED_METRIC: &str = "intercomm_jobs_completed_total";

/// A gateway process serving the bench method, and an HTTP client for it.
pub struct HttpSide {
    http: HttpPool,
    submit_uri: Uri,
    rpc_uri: Uri,
    /// Host, bearer token and content type: what every request carries.
    headers: HeaderMap,
    rpc_body: Bytes,
    /// Jobs this side put in the job store so far (submits answered 202 or, with `Prefer:
    /// wait`, 200): the store must record as many results. The gateway's completion counter
    /// counts them all, so the count must too, or a later round would find it reached early.
    stored: AtomicU64,
    gateway: RoleProcess,
    schemas: std::path::PathBuf,
}

impl HttpSide {
    /// Start a gateway process whose only method is `method`, served by `worker`, with the
    /// default settings but for the rate limit (off: one subject sends every request).
    ///
    /// # Errors
    /// When the gateway cannot start or does not become ready.
    pub async fn start(method: &str, worker: &str) -> anyhow::Result<Self> {
        let schemas =
            std::env::temp_dir().join(format!("intercomm-bench-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&schemas)?;
        let definition = serde_json::json!({
            "method": method,
            "worker": worker,
            "summary": "bench echo",
            "params": {
                "type": "object",
                "required": ["message_id"],
                "properties": {"message_id": {"type": "string", "maxLength": 64}, "n": {"type": "integer"}}
            },
            "timeout_ms": 30000
        });
        std::fs::write(
            schemas.join(format!("{method}.json")),
            definition.to_string(),
        )?;
        let secret = format!("bench-{}", uuid::Uuid::new_v4().simple());
        let token = mint_hs256(
            &Secret::new(secret.clone()),
            "bench",
            Duration::from_secs(3600),
            None,
            None,
        )?;
        let port = free_port()?;
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let listen = address.to_string();
        let schemas_arg = schemas.to_string_lossy().into_owned();
        let gateway = RoleProcess::spawn(
            "gateway",
            &["gateway", "--listen", &listen, "--schemas", &schemas_arg],
            &[
                ("INTERCOMM_JWT_SECRET", secret.as_str()),
                ("INTERCOMM_RATE_LIMIT", "0"),
            ],
        )?;
        let http = HttpPool::new(address);
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_str(&listen)?);
        wait_until_ready(&http, &headers).await?;
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}"))?,
        );
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let rpc_body = serde_json::to_vec(&serde_json::json!({
            "jsonrpc": "2.0", "method": method, "params": {"message_id": "X9J0UI76GBWQTF", "n": 1}, "id": 1
        }))?;
        Ok(Self {
            http,
            submit_uri: format!("/v1/jobs/{method}").parse()?,
            rpc_uri: Uri::from_static("/v1/rpc"),
            headers,
            rpc_body: Bytes::from(rpc_body),
            stored: AtomicU64::new(0),
            gateway,
            schemas,
        })
    }

    /// One job through the async path, answered once its result is recorded.
    ///
    /// # Errors
    /// Any answer but a succeeded job.
    pub async fn submit_and_wait(&self, params: &Bytes) -> anyhow::Result<()> {
        let mut request = self.post(&self.submit_uri, params.clone());
        request
            .headers_mut()
            .insert("prefer", HeaderValue::from_static("wait=30"));
        let (status, _) = self.http.send(request).await?;
        if status != StatusCode::OK {
            bail!("submit answered {status}");
        }
        self.stored.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// One job through the async path as clients use it: accepted (202) at once; its result is
    /// recorded in the job store later ([`HttpSide::wait_recorded`] waits for that).
    ///
    /// # Errors
    /// Any answer but 202.
    pub async fn submit_accepted(&self, params: &Bytes) -> anyhow::Result<()> {
        let request = self.post(&self.submit_uri, params.clone());
        let (status, _) = self.http.send(request).await?;
        if status != StatusCode::ACCEPTED {
            bail!("submit answered {status}");
        }
        self.stored.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Wait until the job store has recorded a result for every job stored so far (read off
    /// the gateway's `/metrics`: there is no event to await over HTTP without adding work to
    /// every job, as a subscription to `/v1/events` would).
    ///
    /// # Errors
    /// When the results are not all recorded within [`RECORD_TIMEOUT`], or one is not a success.
    pub async fn wait_recorded(&self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + RECORD_TIMEOUT;
        loop {
            let stored = self.stored.load(Ordering::Relaxed);
            let (completed, succeeded) = self.completed().await?;
            if completed >= stored {
                if succeeded < completed {
                    bail!(
                        "{} of {completed} stored jobs did not succeed",
                        completed - succeeded
                    );
                }
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "only {completed} of {stored} stored jobs were recorded within {RECORD_TIMEOUT:?}"
                );
            }
            tokio::time::sleep(RECORD_POLL).await;
        }
    }

    /// Jobs recorded as final, and of those succeeded, per the gateway's metrics.
    async fn completed(&self) -> anyhow::Result<(u64, u64)> {
        let (status, body) = self.http.send(get("/metrics", &self.headers)).await?;
        if status != StatusCode::OK {
            bail!("/metrics answered {status}");
        }
        let text = std::str::from_utf8(&body)?;
        let (mut completed, mut succeeded) = (0, 0);
        for line in text
            .lines()
            .filter(|line| line.starts_with(COMPLETED_METRIC))
        {
            let count: u64 = line
                .rsplit(' ')
                .next()
                .and_then(|value| value.parse().ok())
                .unwrap_or(0);
            completed += count;
            if line.contains(r#"outcome="succeeded""#) {
                succeeded += count;
            }
        }
        Ok((completed, succeeded))
    }

    /// One synchronous JSON-RPC call.
    ///
    /// # Errors
    /// Any answer but 200.
    pub async fn rpc(&self) -> anyhow::Result<()> {
        let request = self.post(&self.rpc_uri, self.rpc_body.clone());
        let (status, _) = self.http.send(request).await?;
        if status != StatusCode::OK {
            bail!("rpc answered {status}");
        }
        Ok(())
    }

    fn post(&self, uri: &Uri, body: Bytes) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }

    /// The gateway's process id.
    #[must_use]
    pub fn gateway_pid(&self) -> u32 {
        self.gateway.pid()
    }

    /// Stop the gateway (SIGTERM: it drains and deletes its callback queue).
    pub async fn stop(self) {
        let Self { http, gateway, .. } = self;
        // Idle keep-alive connections close first, so the gateway's drain has nothing to wait on.
        drop(http);
        gateway.stop().await;
        let _ = std::fs::remove_dir_all(&self.schemas);
    }
}

/// A port nobody listens on now (the gateway binds it a moment later).
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Poll `/readyz` until it answers 200 (the gateway is connected to the broker).
async fn wait_until_ready(http: &HttpPool, headers: &HeaderMap) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok((StatusCode::OK, _)) = http.send(get("/readyz", headers)).await {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("the gateway was not ready within {READY_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A GET of `path` carrying `headers`.
fn get(path: &'static str, headers: &HeaderMap) -> Request<Full<Bytes>> {
    let mut request = Request::new(Full::new(Bytes::new()));
    *request.uri_mut() = Uri::from_static(path);
    *request.headers_mut() = headers.clone();
    request
}
