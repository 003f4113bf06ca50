pub mod init;
pub mod policy;
pub mod schema;
pub mod validate;
