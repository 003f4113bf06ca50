//! The engine's own action kinds, registered here so that the contract (`action.rs`) knows
//! none of them: `source` (git), `build` (CodeBuild buildspecs) and `approval`.

use crate::action::Registry;

impl Registry {
    /// A registry with the engine's own kinds: `source`, `build`, `approval`.
    pub fn with_builtins() -> Registry {
        let mut r = Registry::default();
        r.register(crate::source::SourceKind);
        r.register(crate::build::BuildKind);
        r.register(crate::approval::ApprovalKind);
        r
    }
}
