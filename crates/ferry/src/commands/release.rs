//! `ferry release block|unblock`: a release's verdict.

use ferry_workflows::local_identity;
use ferry_workflows::releases::{self, BlockInput};
use serde_json::json;

use super::deploy::render_rollback;
use super::project;
use crate::cli::{ReleaseBlockArgs, ReleaseUnblockArgs};
use crate::live::Console;
use crate::output::{self, ERROR, Exit, Format, OK, fail, paint, runtime};

pub fn block(args: &ReleaseBlockArgs) -> Exit {
    let input = BlockInput {
        release: args.release.clone(),
        reason: args.reason.clone(),
        identity: local_identity(),
        rollback: args.rollback,
    };
    let report = match runtime().block_on(releases::block(
        &project(&args.state),
        &input,
        &Console::new(),
    )) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    match args.format {
        Format::Json => output::json(&report),
        Format::Text => {
            anstream::println!(
                "{} release {} blocked by {}: {}",
                paint(ERROR, "⛔"),
                report.block.execution_id,
                report.block.identity,
                report.block.reason
            );
            for rollback in &report.rollbacks {
                render_rollback(rollback);
            }
        }
    }
    if report.ok() { Exit::Ok } else { Exit::Failed }
}

pub fn unblock(args: &ReleaseUnblockArgs) -> Exit {
    let identity = local_identity();
    let lifted = match releases::unblock(&project(&args.state), &args.release, &identity) {
        Ok(l) => l,
        Err(e) => return fail(&e),
    };
    match args.format {
        Format::Json => output::json(&json!({"release": args.release, "unblocked": lifted})),
        Format::Text => match &lifted {
            Some(block) => anstream::println!(
                "{} release {} unblocked by {identity} (was blocked by {}: {})",
                paint(OK, "✓"),
                block.execution_id,
                block.identity,
                block.reason
            ),
            None => anstream::println!("release {} was not blocked", args.release),
        },
    }
    Exit::Ok
}
