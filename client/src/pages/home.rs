//! `/`: the tickets for sale.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::api::{self, Ticket};
use crate::components::error_alert::ErrorAlert;
use crate::format::dollars;

/// Available tickets (title, price, link), with loading, empty and error states.
#[component]
pub fn Home() -> impl IntoView {
    let tickets = LocalResource::new(api::tickets);
    view! {
        <section>
            <h1>"Tickets for sale"</h1>
            <Transition fallback=|| view! { <p class="muted">"Loading tickets…"</p> }>
                {move || Suspend::new(async move {
                    match tickets.await {
                        Ok(list) if list.is_empty() => view! {
                            <div class="empty">
                                <p>"No tickets for sale right now."</p>
                                <A href="/tickets/new">"Sell a ticket"</A>
                            </div>
                        }.into_any(),
                        Ok(list) => table(list).into_any(),
                        Err(err) => view! { <ErrorAlert error=Some(err)/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

fn table(list: Vec<Ticket>) -> impl IntoView {
    view! {
        <table class="list">
            <thead><tr><th>"Title"</th><th class="num">"Price"</th><th></th></tr></thead>
            <tbody>
                {list.into_iter().map(|t| view! {
                    <tr>
                        <td>{t.title}</td>
                        <td class="num">{dollars(t.price_cents)}</td>
                        <td class="action"><A href=format!("/tickets/{}", t.id)>"View"</A></td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}
