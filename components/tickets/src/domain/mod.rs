//! Validated values of the tickets service, parsed once at the edge, and the rules of a
//! ticket's life (edit, reserve, release).

mod price;
mod ticket;
mod title;

pub use price::{Dollars, MAX_CENTS, PRICE_MESSAGE, PriceCents};
pub use ticket::{EditRefusal, Ticket, Unchanged};
pub use title::{MAX_TITLE_CHARS, TITLE_MESSAGE, Title};
