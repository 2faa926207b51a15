//! (c) The HTTP side: the same echo through the gateway — a real bearer token, schema
//! validation, the job store — as `POST /v1/jobs/{method}` with `Prefer: wait` (accepted, then
//! answered once the result is recorded) and as synchronous `POST /v1/rpc`.

use std::time::Duration;

use anyhow::{Context as _, bail};
use intercomm_core::Settings;
use intercomm_gateway::auth::{AuthSettings, Secret, mint_hs256};
use intercomm_gateway::{Application, GatewaySettings};
use tokio::sync::oneshot;

/// A gateway in this process serving the bench method, and an HTTP client for it.
pub struct HttpSide {
    http: reqwest::Client,
    submit_url: String,
    rpc_url: String,
    token: String,
    rpc_body: Vec<u8>,
    stop: Option<oneshot::Sender<()>>,
    schemas: std::path::PathBuf,
}

impl HttpSide {
    /// Start a gateway whose only method is `method`, served by `worker`.
    ///
    /// # Errors
    /// When the gateway cannot start.
    pub async fn start(amqp_url: &str, method: &str, worker: &str) -> anyhow::Result<Self> {
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
        let secret = Secret::new(format!("bench-{}", uuid::Uuid::new_v4().simple()));
        let token = mint_hs256(&secret, "bench", Duration::from_secs(3600), None, None)?;
        let auth = AuthSettings {
            hs256_secret: Some(secret),
            ..AuthSettings::default()
        };
        let core = Settings {
            amqp_url: amqp_url.to_owned(),
            ..Settings::default()
        };
        let mut settings = GatewaySettings::new(core, auth);
        settings.schemas_dir = schemas.clone();
        settings.rate_per_second = 0;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let application = Application::build_with_listener(settings, listener)
            .await
            .context("starting the bench gateway")?;
        let base = format!("http://127.0.0.1:{}", application.port());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(application.run_until_stopped(async {
            let _ = stopped.await;
        }));
        let rpc_body = serde_json::to_vec(&serde_json::json!({
            "jsonrpc": "2.0", "method": method, "params": {"message_id": "X9J0UI76GBWQTF", "n": 1}, "id": 1
        }))?;
        Ok(Self {
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(256)
                .build()?,
            submit_url: format!("{base}/v1/jobs/{method}"),
            rpc_url: format!("{base}/v1/rpc"),
            token,
            rpc_body,
            stop: Some(stop),
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

    /// Stop the gateway.
    pub fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = std::fs::remove_dir_all(&self.schemas);
    }
}
