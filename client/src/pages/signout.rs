//! `/auth/signout`: signs out on arrival, then goes home.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use crate::Session;
use crate::api;
use crate::components::error_alert::ErrorAlert;

/// Clears the session cookie, forgets the user, and navigates to `/`.
#[component]
pub fn SignOut() -> impl IntoView {
    let session = Session::get();
    let navigate = use_navigate();
    let sign_out = Action::new_local(move |_: &()| {
        let navigate = navigate.clone();
        async move {
            api::sign_out().await?;
            session.0.set(Some(None));
            navigate("/", Default::default());
            Ok(())
        }
    });
    sign_out.dispatch(());
    let error = Signal::derive(move || sign_out.value().get().and_then(Result::err));
    view! {
        <section class="card narrow">
            <p class="muted">"Signing you out…"</p>
            <ErrorAlert error/>
        </section>
    }
}
