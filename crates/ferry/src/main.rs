//! The `ferry` command line: parses arguments, calls one workflow of `ferry-workflows`,
//! renders its report. Logic that is not about the terminal belongs in a library crate.

mod cli;
mod commands;
mod live;
mod output;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

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
        Command::Override(args) => commands::pipeline::override_gates(&args),
        Command::Deploy(cli::DeployCommand::Lambda(args)) => commands::deploy::lambda(&args),
        Command::Deploy(cli::DeployCommand::Ecs(args)) => commands::deploy::ecs(&args),
        Command::Rollback(args) => commands::deploy::rollback(&args),
        Command::Releases(args) => commands::deploy::releases(&args),
        Command::Release(cli::ReleaseCommand::Block(args)) => commands::release::block(&args),
        Command::Release(cli::ReleaseCommand::Unblock(args)) => commands::release::unblock(&args),
        Command::Plan(args) => commands::foundation::plan(&args),
        Command::Bootstrap(args) => commands::foundation::bootstrap(&args),
        Command::Destroy(args) => commands::foundation::destroy(&args),
        Command::Verify(args) => commands::foundation::verify(&args),
        Command::Doctor(args) => commands::foundation::doctor(&args),
        Command::Synth(cli::SynthCommand::Terraform(args)) => {
            commands::foundation::synth_terraform(&args)
        }
        Command::Synth(cli::SynthCommand::Codepipeline(args)) => {
            commands::foundation::synth_codepipeline(&args)
        }
        Command::Policy(cli::PolicyCommand::Simulate(args)) => commands::policy::simulate(&args),
        Command::Policy(cli::PolicyCommand::Lint(args)) => commands::policy::lint(&args),
        Command::Serve(args) => commands::serve::run(&args),
        Command::Audit(args) => commands::serve::audit(&args),
    };
    exit.into()
}
