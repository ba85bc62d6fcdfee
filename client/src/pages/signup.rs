//! `/auth/signup`.

use leptos::prelude::*;

use crate::components::auth_form::{AuthForm, Mode};

/// Create an account.
#[component]
pub fn SignUp() -> impl IntoView {
    view! { <AuthForm mode=Mode::SignUp/> }
}
