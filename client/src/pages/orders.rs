//! `/orders`: the buyer's orders.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::api;
use crate::components::error_alert::ErrorAlert;

/// "title - status" for each order, oldest first.
#[component]
pub fn Orders() -> impl IntoView {
    let orders = LocalResource::new(api::orders);
    view! {
        <section>
            <h1>"My orders"</h1>
            <Transition fallback=|| view! { <p class="muted">"Loading orders…"</p> }>
                {move || Suspend::new(async move {
                    match orders.await {
                        Ok(list) if list.is_empty() => view! {
                            <div class="empty">
                                <p>"You have no orders yet."</p>
                                <A href="/">"Browse tickets"</A>
                            </div>
                        }.into_any(),
                        Ok(list) => view! {
                            <ul class="orders">
                                {list.into_iter().map(|o| {
                                    let class = format!("status status-{}", o.status);
                                    let notice = o.refund_notice();
                                    view! {
                                        <li>
                                            <A href=format!("/orders/{}", o.id)>{o.ticket.title}</A>
                                            " - "
                                            <span class=class>{o.status}</span>
                                            {notice.map(|notice| view! { <span class="muted">{format!(" ({notice})")}</span> })}
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
