//! `intercomm gateway`: run the REST gateway until Ctrl-C or SIGTERM.

use anyhow::Context as _;
use intercomm_gateway::{Application, GatewaySettings};

use crate::cli::GatewayArgs;

/// Build and serve the gateway.
///
/// # Errors
/// Bad settings, a bad schema file, an unreachable broker, a busy port.
pub async fn run(args: GatewayArgs) -> anyhow::Result<()> {
    let mut settings = GatewaySettings::from_env().context("reading settings")?;
    if let Some(listen) = args.listen {
        settings.listen = listen;
    }
    if let Some(schemas) = args.schemas {
        settings.schemas_dir = schemas;
    }
    let application = Application::build(settings).await?;
    tracing::info!(port = application.port(), "gateway listening");
    application
        .run_until_stopped(intercomm_core::shutdown::signal())
        .await
}
