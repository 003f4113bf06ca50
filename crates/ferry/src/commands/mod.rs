pub mod init;
pub mod schema;
pub mod validate;
