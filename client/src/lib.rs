//! The Tessera web client: a Leptos CSR app. `App` holds the session and the routes; pages
//! live in `pages/` (one per route), shared widgets in `components/`, and `api` is the only
//! module that talks to the server.
#![deny(missing_docs)]

pub mod api;
pub mod components;
pub mod format;
pub mod pages;

use leptos::prelude::*;
use leptos_router::components::{ProtectedRoute, Route, Router, Routes};
use leptos_router::path;

use crate::api::CurrentUser;
use crate::components::header::Header;
use crate::pages::{
    activity::Activity, home::Home, new_ticket::NewTicket, not_found::NotFound, order::OrderPage,
    orders::Orders, signin::SignIn, signout::SignOut, signup::SignUp, ticket::TicketPage,
};

/// Who is signed in: `None` while the first `currentuser` call is in flight, then
/// `Some(None)` (signed out) or `Some(Some(user))`. Shared through context.
#[derive(Clone, Copy)]
pub struct Session(pub RwSignal<Option<Option<CurrentUser>>>);

impl Session {
    /// The session from context (provided by `App`).
    pub fn get() -> Self {
        expect_context::<Session>()
    }

    /// `Some(true)` when signed in, `None` while still asking the server.
    pub fn signed_in(&self) -> Option<bool> {
        self.0.get().map(|user| user.is_some())
    }
}

/// The whole app: session context, header, and the routes.
#[component]
pub fn App() -> impl IntoView {
    let session = Session(RwSignal::new(None));
    provide_context(session);
    leptos::task::spawn_local(async move {
        // A failed check counts as signed out; the API still enforces every rule.
        let user = api::current_user().await.ok().flatten();
        // A sign-in or sign-out that finished first is newer than this answer: keep it.
        session.0.update(|state| {
            if state.is_none() {
                *state = Some(user);
            }
        });
    });
    let signed_in = move || session.signed_in();
    let to_signin = || "/auth/signin";
    let loading = || view! { <p class="muted">"Loading…"</p> };

    view! {
        <Router>
            <Header/>
            <main class="container">
                <Routes fallback=NotFound>
                    <Route path=path!("/") view=Home/>
                    <Route path=path!("/auth/signup") view=SignUp/>
                    <Route path=path!("/auth/signin") view=SignIn/>
                    <Route path=path!("/auth/signout") view=SignOut/>
                    <ProtectedRoute path=path!("/tickets/new") view=NewTicket
                        condition=signed_in redirect_path=to_signin fallback=loading/>
                    <Route path=path!("/tickets/:id") view=TicketPage/>
                    <ProtectedRoute path=path!("/orders") view=Orders
                        condition=signed_in redirect_path=to_signin fallback=loading/>
                    <ProtectedRoute path=path!("/orders/:id") view=OrderPage
                        condition=signed_in redirect_path=to_signin fallback=loading/>
                    <ProtectedRoute path=path!("/activity") view=Activity
                        condition=signed_in redirect_path=to_signin fallback=loading/>
                </Routes>
            </main>
        </Router>
    }
}
