//! `/`: the tickets for sale, and a search box over them.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::api::{self, SearchHit, Ticket};
use crate::components::error_alert::ErrorAlert;
use crate::format::dollars;

/// Available tickets (title, price, link), with loading, empty and error states; a search
/// replaces the list with the tickets matching every word, best match first.
#[component]
pub fn Home() -> impl IntoView {
    let tickets = LocalResource::new(api::tickets);
    let input = RwSignal::new(String::new());
    // The query whose results are shown; empty shows every ticket.
    let query = RwSignal::new(String::new());
    let results = LocalResource::new(move || {
        let q = query.get();
        async move {
            if q.is_empty() {
                None
            } else {
                Some(api::search(&q).await)
            }
        }
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        query.set(input.get_untracked().trim().to_owned());
    };
    let clear = move |_| {
        input.set(String::new());
        query.set(String::new());
    };
    view! {
        <section>
            <h1>"Tickets for sale"</h1>
            <form class="search" role="search" on:submit=on_submit>
                <input type="search" aria-label="Search tickets" placeholder="Search tickets"
                    prop:value=move || input.get()
                    on:input=move |ev| input.set(event_target_value(&ev))/>
                <button type="submit" class="button">"Search"</button>
                <Show when=move || !query.get().is_empty()>
                    <button type="button" class="button" on:click=clear>"Clear"</button>
                </Show>
            </form>
            <Transition fallback=|| view! { <p class="muted">"Loading tickets…"</p> }>
                {move || Suspend::new(async move {
                    match results.await {
                        Some(Ok(hits)) if hits.is_empty() => view! {
                            <div class="empty">
                                <p>{format!("No tickets match “{}”.", query.get_untracked())}</p>
                            </div>
                        }.into_any(),
                        Some(Ok(hits)) => hits_table(hits).into_any(),
                        Some(Err(err)) => view! { <ErrorAlert error=Some(err)/> }.into_any(),
                        None => match tickets.await {
                            Ok(list) if list.is_empty() => view! {
                                <div class="empty">
                                    <p>"No tickets for sale right now."</p>
                                    <A href="/tickets/new">"Sell a ticket"</A>
                                </div>
                            }.into_any(),
                            Ok(list) => table(list).into_any(),
                            Err(err) => view! { <ErrorAlert error=Some(err)/> }.into_any(),
                        },
                    }
                })}
            </Transition>
        </section>
    }
}

fn rows(rows: Vec<(String, String, i64)>) -> impl IntoView {
    view! {
        <table class="list">
            <thead><tr><th>"Title"</th><th class="num">"Price"</th><th></th></tr></thead>
            <tbody>
                {rows.into_iter().map(|(id, title, cents)| view! {
                    <tr>
                        <td>{title}</td>
                        <td class="num">{dollars(cents)}</td>
                        <td class="action"><A href=format!("/tickets/{id}")>"View"</A></td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

fn table(list: Vec<Ticket>) -> impl IntoView {
    rows(
        list.into_iter()
            .map(|t| (t.id, t.title, t.price_cents))
            .collect(),
    )
}

fn hits_table(hits: Vec<SearchHit>) -> impl IntoView {
    rows(
        hits.into_iter()
            .map(|h| (h.id, h.title, h.price_cents))
            .collect(),
    )
}
