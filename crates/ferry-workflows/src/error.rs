//! What can go wrong in a workflow, one case per kind of failure, so that the CLI chooses its
//! exit status and the server its HTTP status from the case, never from the message.

use ferry_aws::error::AwsError;
use ferry_engine::store::StoreError;
use ferry_engine::{EngineError, Refused};

/// A workflow's error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The manifest has errors; the diagnostics are in it.
    #[error("{} is not valid; `ferry validate -f {}` explains", .0.file.name(), .0.file.name())]
    InvalidManifest(Box<ferry_manifest::Loaded>),
    /// The request names something that does not exist, or asks what cannot be asked.
    #[error("{0}")]
    Usage(String),
    /// What the request is about does not exist (an execution, a log, a release).
    #[error("{0}")]
    NotFound(String),
    /// The manifest needs access the foundation does not grant; the report says which.
    #[error(
        "ferry.yaml needs access the foundation does not grant: `ferry bootstrap` adds it (`ferry plan` shows what changes)"
    )]
    AccessNotGranted(Box<crate::verify::VerifyReport>),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// Anything else that stops the workflow, in words (git failing, say).
    #[error("{0}")]
    Failed(String),
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub fn write(path: &std::path::Path, source: std::io::Error) -> Error {
        Error::io(format!("cannot write {}", path.display()), source)
    }

    /// The refusal, when the engine refused the request (an approval rule, a retry of a
    /// stage that did not fail, …).
    pub fn refusal(&self) -> Option<&Refused> {
        match self {
            Error::Engine(EngineError::Refused(r)) => Some(r),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
