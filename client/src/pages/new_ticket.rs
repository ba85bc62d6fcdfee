//! `/tickets/new`: list a ticket for sale.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use crate::api::{self, ApiError, ErrorMessage};
use crate::components::error_alert::ErrorAlert;
use crate::format::round_to_cents;

/// Title and price; the price is rounded to cents when the field loses focus.
#[component]
pub fn NewTicket() -> impl IntoView {
    let navigate = use_navigate();
    let title = RwSignal::new(String::new());
    let price = RwSignal::new(String::new());
    let create = Action::new_local(move |(title, price): &(String, String)| {
        let (title, price) = (title.clone(), price.clone());
        let navigate = navigate.clone();
        async move {
            let Some(price) = round_to_cents(&price).and_then(|p| p.parse::<f64>().ok()) else {
                let message = "Price must be a number".to_owned();
                let field = Some("price".to_owned());
                return Err(ApiError::Server {
                    status: 400,
                    messages: vec![ErrorMessage { message, field }],
                });
            };
            api::create_ticket(&title, price).await?;
            navigate("/", Default::default());
            Ok(())
        }
    });
    let error = Signal::derive(move || create.value().get().and_then(Result::err));
    let on_blur = move |_| {
        if let Some(rounded) = round_to_cents(&price.get_untracked()) {
            price.set(rounded);
        }
    };
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        create.dispatch((title.get_untracked(), price.get_untracked()));
    };
    view! {
        <section class="card narrow">
            <h1>"Sell a ticket"</h1>
            <form on:submit=on_submit>
                <label>"Title"
                    <input type="text" maxlength="120" required bind:value=title/>
                </label>
                <label>"Price (USD)"
                    <input type="text" inputmode="decimal" placeholder="0.00" required
                        bind:value=price on:blur=on_blur/>
                </label>
                <ErrorAlert error/>
                <button type="submit" class="button primary" disabled=move || create.pending().get()>
                    {move || if create.pending().get() { "Listing…" } else { "List ticket" }}
                </button>
            </form>
        </section>
    }
}
