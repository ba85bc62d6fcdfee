//! `/tickets/:id`: one ticket, and the Purchase button.

use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_params_map};

use crate::Session;
use crate::api::{self, Ticket};
use crate::components::error_alert::ErrorAlert;
use crate::format::dollars;

/// Title, price, and Purchase (which reserves it and goes to the order), or "Reserved".
#[component]
pub fn TicketPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let ticket = LocalResource::new(move || {
        let id = id();
        async move { api::ticket(&id).await }
    });
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading ticket…"</p> }>
            {move || Suspend::new(async move {
                match ticket.await {
                    Ok(ticket) => view! { <TicketCard ticket/> }.into_any(),
                    Err(err) => view! { <ErrorAlert error=Some(err)/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn TicketCard(ticket: Ticket) -> impl IntoView {
    let session = Session::get();
    let navigate = use_navigate();
    let ticket_id = ticket.id.clone();
    let purchase = Action::new_local(move |_: &()| {
        let (navigate, ticket_id) = (navigate.clone(), ticket_id.clone());
        async move {
            if session.signed_in() != Some(true) {
                navigate("/auth/signin", Default::default());
                return Ok(());
            }
            let order = api::create_order(&ticket_id).await?;
            navigate(&format!("/orders/{}", order.id), Default::default());
            Ok(())
        }
    });
    let error = Signal::derive(move || purchase.value().get().and_then(Result::err));
    let reserved = ticket.order_id.is_some();
    view! {
        <section class="card narrow">
            <h1>{ticket.title}</h1>
            <p class="price">{dollars(ticket.price_cents)}</p>
            <ErrorAlert error/>
            {if reserved {
                view! { <p class="badge">"Reserved — not available right now."</p> }.into_any()
            } else {
                view! {
                    <button class="button primary" disabled=move || purchase.pending().get()
                        on:click=move |_| { purchase.dispatch(()); }>
                        {move || if purchase.pending().get() { "Reserving…" } else { "Purchase" }}
                    </button>
                }.into_any()
            }}
        </section>
    }
}
