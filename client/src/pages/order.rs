//! `/orders/:id`: the countdown and the payment form.

use std::time::Duration;

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;

use crate::api::{self, Order};
use crate::components::card_form::CardForm;
use crate::components::error_alert::ErrorAlert;
use crate::format::{dollars, seconds_left};

/// Loads the order and shows its state: pay within the lock window, or why not.
#[component]
pub fn OrderPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let order = LocalResource::new(move || {
        let id = id();
        async move { api::order(&id).await }
    });
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading order…"</p> }>
            {move || Suspend::new(async move {
                match order.await {
                    Ok(order) => view! { <OrderCard order/> }.into_any(),
                    Err(err) => view! { <ErrorAlert error=Some(err)/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn OrderCard(order: Order) -> impl IntoView {
    let deadline = js_sys::Date::parse(&order.expires_at);
    let now = RwSignal::new(js_sys::Date::now());
    // Tick once a second while the page is shown; the handle is cleared with the view.
    if let Ok(handle) =
        set_interval_with_handle(move || now.set(js_sys::Date::now()), Duration::from_secs(1))
    {
        on_cleanup(move || handle.clear());
    }
    let left = move || seconds_left(deadline, now.get());
    // The branch below depends on this memo, not on the clock, so the payment form is built
    // once (keeping its state and errors) instead of on every tick.
    let expired = Memo::new(move |_| left() == 0);
    let status = order.status.clone();
    let refund_notice = order.refund_notice();
    let order_id = order.id.clone();
    let amount = dollars(order.ticket.price_cents);
    view! {
        <section class="card narrow">
            <h1>{order.ticket.title.clone()}</h1>
            <p class="price">{amount.clone()}</p>
            {move || match status.as_str() {
                "complete" => view! {
                    <p class="badge ok">"Paid. Enjoy the show!"</p>
                    <A href="/orders">"My orders"</A>
                }.into_any(),
                "cancelled" => view! {
                    <p class="badge">"Order Cancelled"</p>
                    {refund_notice.map(|notice| view! { <p class="notice">{notice}</p> })}
                }.into_any(),
                _ if expired.get() => view! { <p class="badge">"Order Expired"</p> }.into_any(),
                _ => view! {
                    <p class="countdown">{move || format!("Time left to pay: {} seconds", left())}</p>
                    <CardForm order_id=order_id.clone() amount=amount.clone()/>
                }.into_any(),
            }}
        </section>
    }
}
