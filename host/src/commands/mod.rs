pub mod build;
pub mod up;
