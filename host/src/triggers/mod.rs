pub mod http;
pub mod ready_instance;
pub mod redis;
pub mod reused_instance;
