//! `intercomm call <method> <params>`: one JSON-RPC call straight over the broker.
//!
//! Exit codes tell the outcomes apart: 0 result printed, 1 broker or usage problem, 3 the worker
//! answered an error, 4 unroutable (no worker bound), 5 no reply before the timeout.

use std::io::Read as _;
use std::process::ExitCode;

use intercomm_core::{CallOptions, Connector, Error, RpcClient, Settings};
use serde_json::value::RawValue;

use crate::cli::CallArgs;

/// The worker answered a JSON-RPC error.
pub const EXIT_REMOTE_ERROR: u8 = 3;
/// No worker queue is bound for the method.
pub const EXIT_UNROUTABLE: u8 = 4;
/// No reply before the timeout.
pub const EXIT_TIMEOUT: u8 = 5;

/// Make the call and print the outcome.
pub async fn run(args: CallArgs) -> ExitCode {
    match call(&args).await {
        Ok(result) => {
            println!("{}", pretty(result.get()));
            ExitCode::SUCCESS
        }
        Err(error) => {
            let code = exit_code(&error);
            match &error {
                Error::Remote(remote) => {
                    eprintln!("error: the worker answered {}", remote);
                    if let Ok(json) = serde_json::to_string_pretty(remote) {
                        println!("{json}");
                    }
                }
                other => eprintln!("error: {other}"),
            }
            ExitCode::from(code)
        }
    }
}

async fn call(args: &CallArgs) -> Result<Box<RawValue>, Error> {
    let text = if args.params == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|error| Error::InvalidSetting {
                name: "params",
                reason: format!("cannot read standard input: {error}"),
            })?;
        text
    } else {
        args.params.clone()
    };
    let params = RawValue::from_string(text).map_err(|error| Error::InvalidSetting {
        name: "params",
        reason: format!("not JSON: {error}"),
    })?;
    let settings = Settings::from_env()?;
    let connector = Connector::new(
        settings.amqp_url.clone(),
        format!("intercomm-call-{}", std::process::id()),
    );
    let client = RpcClient::builder(connector)
        .app_id("intercomm-cli")
        .connect()
        .await?;
    let options = CallOptions {
        timeout: Some(args.timeout.unwrap_or(settings.call_timeout)),
        user: args.user.clone(),
        ..CallOptions::default()
    };
    let result = client.call_raw(&args.method, Some(&params), &options).await;
    client.close().await;
    result
}

/// The exit code for an error.
#[must_use]
pub fn exit_code(error: &Error) -> u8 {
    match error {
        Error::Remote(_) => EXIT_REMOTE_ERROR,
        Error::Unroutable { .. } => EXIT_UNROUTABLE,
        Error::Timeout(_) => EXIT_TIMEOUT,
        _ => 1,
    }
}

fn pretty(json: &str) -> String {
    serde_json::from_str::<serde_json::Value>(json)
        .and_then(|value| serde_json::to_string_pretty(&value))
        .unwrap_or_else(|_| json.to_owned())
}
