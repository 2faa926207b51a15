//! `intercomm routes [check DIR | reload --pid PID]`: list method → worker → HTTP route, check a
//! directory offline, or ask a running gateway to reload.

use anyhow::Context as _;
use intercomm_core::schema::SchemaSet;

use crate::cli::{RoutesAction, RoutesArgs};

/// Run the routes command.
///
/// # Errors
/// A bad definition (named), or a failed reload signal.
pub fn run(args: RoutesArgs) -> anyhow::Result<()> {
    match args.action {
        None => list(&args.schemas),
        Some(RoutesAction::Check { dir }) => {
            let dir = dir.unwrap_or(args.schemas);
            let schemas = SchemaSet::load_dir(&dir)?;
            println!(
                "{}: {} job definitions, all valid",
                dir.display(),
                schemas.len()
            );
            Ok(())
        }
        Some(RoutesAction::Reload { pid }) => {
            let status = std::process::Command::new("kill")
                .args(["-HUP", &pid.to_string()])
                .status()
                .context("running kill -HUP")?;
            anyhow::ensure!(status.success(), "kill -HUP {pid} failed");
            println!(
                "asked gateway {pid} to reload; its log says whether the new routes were taken"
            );
            Ok(())
        }
    }
}

fn list(dir: &std::path::Path) -> anyhow::Result<()> {
    let schemas = SchemaSet::load_dir(dir)?;
    println!("{:<28} {:<16} {:<8} ROUTE", "METHOD", "WORKER", "VERB");
    for definition in schemas.iter() {
        let (verb, path) = definition.http.as_ref().map_or(
            ("POST", format!("/v1/jobs/{}", definition.method)),
            |route| (route.verb.as_str(), route.path.clone()),
        );
        println!(
            "{:<28} {:<16} {:<8} {}",
            definition.method, definition.worker, verb, path
        );
    }
    Ok(())
}
