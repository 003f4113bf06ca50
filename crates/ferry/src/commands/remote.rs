//! The commands that can act through a shared `ferry serve` (`--server URL`): the same
//! renderings as on local state, from the server's answers.

use secrecy::SecretString;

use ferry_server::client::Client;

use crate::cli::{RemoteArgs, StateArgs};
use crate::output::{self, Exit};

/// The client of `--server`, with the token from `--token-file` or `FERRY_TOKEN`.
pub fn client(remote: &RemoteArgs) -> Result<Client, Exit> {
    let Some(url) = &remote.server else {
        output::error("give --server URL");
        return Err(Exit::Usage);
    };
    let token = match &remote.token_file {
        Some(path) => std::fs::read_to_string(path).map_err(|e| {
            output::error(&format!("cannot read the token file {}: {e}", path.display()));
            Exit::Usage
        })?,
        None => std::env::var("FERRY_TOKEN").map_err(|_| {
            output::error("give the API token in FERRY_TOKEN or with --token-file PATH (`ferry serve token create` makes one)");
            Exit::Usage
        })?,
    };
    let ca = match &remote.ca_file {
        Some(path) => Some(std::fs::read(path).map_err(|e| {
            output::error(&format!("cannot read the CA file {}: {e}", path.display()));
            Exit::Usage
        })?),
        None => None,
    };
    Client::new(
        url,
        SecretString::from(token.trim().to_owned()),
        ca.as_deref(),
    )
    .map_err(|e| {
        output::error(&e.to_string());
        Exit::Usage
    })
}

/// The pipeline the manifest names (for execution numbers and environments).
pub fn pipeline(state: &StateArgs) -> Result<String, Exit> {
    ferry_manifest::load(&state.manifest.file)
        .manifest
        .map(|m| m.pipeline)
        .ok_or_else(|| {
            output::error(&format!(
                "{} cannot be read: with --server, ferry still reads the manifest for the pipeline's name (`ferry validate` explains)",
                state.manifest.file.display()
            ));
            Exit::Usage
        })
}

/// An execution's id: `orders-3` as given, `3` with the manifest's pipeline.
pub fn execution_id(state: &StateArgs, key: &str) -> Result<String, Exit> {
    match key.trim_start_matches('#').parse::<u64>() {
        Ok(n) => Ok(format!("{}-{n}", pipeline(state)?)),
        Err(_) => Ok(key.to_owned()),
    }
}

/// Renders a failed call: refusals with the server's words.
pub fn failed(e: &ferry_server::client::ClientError) -> Exit {
    output::error(&e.to_string());
    if matches!(
        e,
        ferry_server::client::ClientError::Refused { status: 400, .. }
    ) {
        Exit::Usage
    } else {
        Exit::Failed
    }
}
