//! The email + password form shared by sign-up and sign-in.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use crate::Session;
use crate::api::{self, ApiError};
use crate::components::error_alert::ErrorAlert;

/// Which call the form makes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `POST /api/users/signup`.
    SignUp,
    /// `POST /api/users/signin`.
    SignIn,
}

/// Signs up or in; on success stores the user in the session and goes to `/`.
#[component]
pub fn AuthForm(
    /// Sign up or sign in.
    mode: Mode,
) -> impl IntoView {
    let session = Session::get();
    let navigate = use_navigate();
    let email = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let submit = Action::new_local(move |(email, password): &(String, String)| {
        let (email, password) = (email.clone(), password.clone());
        let navigate = navigate.clone();
        async move {
            let user = match mode {
                Mode::SignUp => api::sign_up(&email, &password).await,
                Mode::SignIn => api::sign_in(&email, &password).await,
            }?;
            session.0.set(Some(Some(user)));
            navigate("/", Default::default());
            Ok::<(), ApiError>(())
        }
    });
    let error = Signal::derive(move || submit.value().get().and_then(Result::err));
    let (title, button) = match mode {
        Mode::SignUp => ("Sign Up", "Create account"),
        Mode::SignIn => ("Sign In", "Sign in"),
    };
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        submit.dispatch((email.get_untracked(), password.get_untracked()));
    };
    view! {
        <section class="card narrow">
            <h1>{title}</h1>
            <form on:submit=on_submit>
                <label>"Email"
                    <input type="email" autocomplete="email" required bind:value=email/>
                </label>
                <label>"Password"
                    <input type="password" required
                        autocomplete=if mode == Mode::SignUp { "new-password" } else { "current-password" }
                        bind:value=password/>
                </label>
                <ErrorAlert error/>
                <button type="submit" class="button primary" disabled=move || submit.pending().get()>
                    {move || if submit.pending().get() { "Please wait…" } else { button }}
                </button>
            </form>
        </section>
    }
}
