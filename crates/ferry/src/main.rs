//! The `ferry` command line: parses arguments, calls the library crates, prints results.
//! Logic that is not about the terminal belongs in a library crate.

mod cli;
mod commands;
mod live;
mod output;
mod state;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::output::Exit;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let exit = match cli.command {
        Command::Init(args) => commands::init::run(&args),
        Command::Validate(args) => commands::validate::run(&args),
        Command::Schema(args) => commands::schema::run(&args),
        Command::Run(args) => commands::pipeline::run(&args),
        Command::Status(args) => commands::pipeline::status(&args),
        Command::History(args) => commands::pipeline::history(&args),
        Command::Logs(args) => commands::pipeline::logs(&args),
        Command::Approve(args) => commands::pipeline::decide(&args, true),
        Command::Reject(args) => commands::pipeline::decide(&args, false),
        Command::Retry(args) => commands::pipeline::retry(&args),
        Command::Stop(args) => commands::pipeline::stop(&args),
        Command::Deploy(cli::DeployCommand::Lambda(args)) => commands::deploy::lambda(&args),
        Command::Deploy(cli::DeployCommand::Ecs(args)) => commands::deploy::ecs(&args),
        Command::Rollback(args) => commands::deploy::rollback(&args),
        Command::Releases(args) => commands::deploy::releases(&args),
        Command::Plan(args)
        | Command::Bootstrap(args)
        | Command::Destroy(args)
        | Command::Verify(args)
        | Command::Doctor(args)
        | Command::Synth(args) => not_available_yet(&args, 6),
        Command::Policy(cli::PolicyCommand::Simulate(args)) => commands::policy::simulate(&args),
        Command::Policy(cli::PolicyCommand::Lint(args)) => commands::policy::lint(&args),
        Command::Serve(args) => not_available_yet(&args, 0),
    };
    exit.into()
}

/// Commands whose work lands later say so plainly instead of pretending.
fn not_available_yet(args: &cli::Pending, issue: u32) -> Exit {
    let name = std::env::args().nth(1).unwrap_or_default();
    let tracked = if issue == 0 {
        String::new()
    } else {
        format!(" (tracked in issue #{issue})")
    };
    let _ = &args.rest;
    output::error(&format!("`ferry {name}` is not available yet{tracked}"));
    Exit::Usage
}
