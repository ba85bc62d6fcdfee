//! Any unknown page.

use leptos::prelude::*;
use leptos_router::components::A;

/// A friendly 404 with a way back.
#[component]
pub fn NotFound() -> impl IntoView {
    view! {
        <section class="card narrow">
            <h1>"Page not found"</h1>
            <p class="muted">"There is nothing at this address."</p>
            <A href="/">"Back to tickets"</A>
        </section>
    }
}
