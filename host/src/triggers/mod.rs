pub mod http;
pub mod redis;
pub mod reused_instance;
