//! (c) The HTTP side: the same echo through the gateway — a real bearer token, schema
//! validation, the job store — as `POST /v1/jobs/{method}` with `Prefer: wait` (accepted, then
//! answered once the result is recorded) and as synchronous `POST /v1/rpc`. The gateway is
//! `intercomm gateway` in its own process; this process is only the HTTP load generator.

use std::time::Duration;

use anyhow::bail;
use intercomm_gateway::auth::{Secret, mint_hs256};

use super::roles::RoleProcess;

/// How long the gateway may take to answer `/readyz` with 200.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A gateway process serving the bench method, and an HTTP client for it.
pub struct HttpSide {
    http: reqwest::Client,
    submit_url: String,
    rpc_url: String,
    token: String,
    rpc_body: Vec<u8>,
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
        let listen = format!("127.0.0.1:{port}");
        let schemas_arg = schemas.to_string_lossy().into_owned();
        let gateway = RoleProcess::spawn(
            "gateway",
            &["gateway", "--listen", &listen, "--schemas", &schemas_arg],
            &[
                ("INTERCOMM_JWT_SECRET", secret.as_str()),
                ("INTERCOMM_RATE_LIMIT", "0"),
            ],
        )?;
        let base = format!("http://{listen}");
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()?;
        wait_until_ready(&http, &format!("{base}/readyz")).await?;
        let rpc_body = serde_json::to_vec(&serde_json::json!({
            "jsonrpc": "2.0", "method": method, "params": {"message_id": "X9J0UI76GBWQTF", "n": 1}, "id": 1
        }))?;
        Ok(Self {
            http,
            submit_url: format!("{base}/v1/jobs/{method}"),
            rpc_url: format!("{base}/v1/rpc"),
            token,
            rpc_body,
            gateway,
            schemas,
        })
    }

    /// One job through the async path, answered once its result is recorded.
    ///
    /// # Errors
    /// Any answer but a succeeded job.
    pub async fn submit_and_wait(&self, params: &[u8]) -> anyhow::Result<()> {
        let response = self
            .http
            .post(&self.submit_url)
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .header("prefer", "wait=30")
            .body(params.to_vec())
            .send()
            .await?;
        if response.status() != reqwest::StatusCode::OK {
            bail!("submit answered {}", response.status());
        }
        let _ = response.bytes().await?;
        Ok(())
    }

    /// One synchronous JSON-RPC call.
    ///
    /// # Errors
    /// Any answer but 200.
    pub async fn rpc(&self) -> anyhow::Result<()> {
        let response = self
            .http
            .post(&self.rpc_url)
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(self.rpc_body.clone())
            .send()
            .await?;
        if response.status() != reqwest::StatusCode::OK {
            bail!("rpc answered {}", response.status());
        }
        let _ = response.bytes().await?;
        Ok(())
    }

    /// The gateway's process id.
    #[must_use]
    pub fn gateway_pid(&self) -> u32 {
        self.gateway.pid()
    }

    /// Stop the gateway (SIGTERM: it drains and deletes its callback queue).
    pub async fn stop(self) {
        self.gateway.stop().await;
        let _ = std::fs::remove_dir_all(&self.schemas);
    }
}

/// A port nobody listens on now (the gateway binds it a moment later).
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Poll `/readyz` until it answers 200 (the gateway is connected to the broker).
async fn wait_until_ready(http: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(response) = http.get(url).send().await
            && response.status() == reqwest::StatusCode::OK
        {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("the gateway at {url} was not ready within {READY_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
