//! Widgets shared by several pages.

pub mod auth_form;
pub mod card_form;
pub mod error_alert;
pub mod header;
