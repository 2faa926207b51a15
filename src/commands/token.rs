//! `intercomm token --sub <user>`: print an HS256 token signed with `INTERCOMM_JWT_SECRET`, so a
//! newcomer can try the API with curl.

use anyhow::{Context as _, bail};
use intercomm_gateway::auth::{AuthSettings, mint_hs256};

use crate::cli::TokenArgs;

/// Print the token.
///
/// # Errors
/// When no HS256 secret is configured.
pub fn run(args: &TokenArgs) -> anyhow::Result<()> {
    let settings = AuthSettings::from_env().context("reading token settings")?;
    let Some(secret) = settings.hs256_secret else {
        bail!("INTERCOMM_JWT_SECRET is not set; set it to the gateway's secret to mint a token");
    };
    let token = mint_hs256(
        &secret,
        &args.sub,
        args.ttl,
        settings.issuer.as_deref(),
        settings.audience.as_deref(),
    )
    .context("signing the token")?;
    println!("{token}");
    Ok(())
}
