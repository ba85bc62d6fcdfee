//! The site header: brand and the links that fit the session.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::Session;

/// Brand → `/`; signed out: Sign Up, Sign In; signed in: Sell Tickets, My Orders, Activity,
/// Sign Out.
#[component]
pub fn Header() -> impl IntoView {
    let session = Session::get();
    view! {
        <header class="site-header">
            <nav class="container nav">
                <A href="/" attr:class="brand">"Tessera"</A>
                <div class="nav-links">
                    {move || match session.signed_in() {
                        None => ().into_any(),
                        Some(true) => view! {
                            <A href="/tickets/new">"Sell Tickets"</A>
                            <A href="/orders">"My Orders"</A>
                            <A href="/activity">"Activity"</A>
                            <A href="/auth/signout">"Sign Out"</A>
                        }.into_any(),
                        Some(false) => view! {
                            <A href="/auth/signup">"Sign Up"</A>
                            <A href="/auth/signin" attr:class="button">"Sign In"</A>
                        }.into_any(),
                    }}
                </div>
            </nav>
        </header>
    }
}
