pub mod deploy;
pub mod foundation;
pub mod init;
pub mod pipeline;
pub mod policy;
pub mod schema;
pub mod validate;
