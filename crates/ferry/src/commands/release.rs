//! `ferry release block|unblock`: a release's verdict, here or through `--server`.

use ferry_workflows::local_identity;
use ferry_workflows::releases::{self, BlockInput};

use super::deploy::render_rollback;
use super::{project, remote};
use crate::cli::{ReleaseBlockArgs, ReleaseUnblockArgs};
use crate::live::Console;
use crate::output::{self, ERROR, Exit, Format, OK, fail, paint, runtime};

pub fn block(args: &ReleaseBlockArgs) -> Exit {
    let report = if args.remote.server.is_some() {
        let result = remote::client(&args.remote).and_then(|c| {
            let pipeline = remote::pipeline(&args.state)?;
            runtime()
                .block_on(c.block_release(&pipeline, &args.release, &args.reason, args.rollback))
                .map_err(|e| remote::failed(&e))
        });
        match result {
            Ok(r) => r,
            Err(exit) => return exit,
        }
    } else {
        let input = BlockInput {
            release: args.release.clone(),
            reason: args.reason.clone(),
            identity: local_identity(),
            rollback: args.rollback,
        };
        match runtime().block_on(releases::block(
            &project(&args.state),
            &input,
            &Console::new(),
        )) {
            Ok(r) => r,
            Err(e) => return fail(&e),
        }
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
    let report = if args.remote.server.is_some() {
        let result = remote::client(&args.remote).and_then(|c| {
            let pipeline = remote::pipeline(&args.state)?;
            runtime()
                .block_on(c.unblock_release(&pipeline, &args.release))
                .map_err(|e| remote::failed(&e))
        });
        match result {
            Ok(r) => r,
            Err(exit) => return exit,
        }
    } else {
        match releases::unblock(&project(&args.state), &args.release, &local_identity()) {
            Ok(r) => r,
            Err(e) => return fail(&e),
        }
    };
    match args.format {
        Format::Json => output::json(&report),
        Format::Text => match &report.unblocked {
            Some(block) => anstream::println!(
                "{} release {} unblocked (was blocked by {}: {})",
                paint(OK, "✓"),
                report.release,
                block.identity,
                block.reason
            ),
            None => anstream::println!("release {} was not blocked", report.release),
        },
    }
    Exit::Ok
}
