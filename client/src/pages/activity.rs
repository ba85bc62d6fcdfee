//! `/activity`: what happened to the user's orders and tickets.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::api;
use crate::components::error_alert::ErrorAlert;

/// The activity feed, newest first: one sentence per event, with its time.
#[component]
pub fn Activity() -> impl IntoView {
    let entries = LocalResource::new(api::activity);
    view! {
        <section>
            <h1>"Activity"</h1>
            <Transition fallback=|| view! { <p class="muted">"Loading activity…"</p> }>
                {move || Suspend::new(async move {
                    match entries.await {
                        Ok(list) if list.is_empty() => view! {
                            <div class="empty">
                                <p>"Nothing has happened yet."</p>
                                <A href="/">"Browse tickets"</A>
                            </div>
                        }.into_any(),
                        Ok(list) => view! {
                            <ul class="activity">
                                {list.into_iter().map(|e| {
                                    let class = format!("activity-{} activity-{}", e.role, e.kind);
                                    // A buyer opens the order; a seller, who cannot, the ticket.
                                    let href = if e.role == "seller" {
                                        format!("/tickets/{}", e.ticket_id)
                                    } else {
                                        format!("/orders/{}", e.order_id)
                                    };
                                    view! {
                                        <li class=class>
                                            <A href=href>{e.message}</A>
                                            <time class="muted" datetime=e.at.clone()>{e.at.replace('T', " ").replace('Z', " UTC")}</time>
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                        }.into_any(),
                        Err(err) => view! { <ErrorAlert error=Some(err)/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}
