//! ferry-aws against the moto emulator: four accounts, ferry acting as the shared account and
//! deploying through each target account's deploy role. One test binary, several modules,
//! to link the AWS SDK once.

mod assess;
mod codebuild;
mod common;
mod ecs;
mod faults;
mod hooks;
mod lambda;
mod pipeline;
