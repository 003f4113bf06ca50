//! The foundation as Terraform (`ferry synth terraform`), and the pipeline as an AWS
//! CodePipeline V2 definition (`ferry synth codepipeline`), for teams that want those tools.
//! Both come from the same plan as `ferry bootstrap`.

pub mod codepipeline;
pub mod terraform;

/// A file to write: its path relative to the output directory, and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub path: String,
    pub text: String,
}
