//! `/auth/signin`.

use leptos::prelude::*;

use crate::components::auth_form::{AuthForm, Mode};

/// Sign in to an existing account.
#[component]
pub fn SignIn() -> impl IntoView {
    view! { <AuthForm mode=Mode::SignIn/> }
}
