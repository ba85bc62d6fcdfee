//! The auth service: signup, signin, signout and the current user
//! (the "Session" section of `spec/marketplace.md`).
//!
//! This file is the Spin glue only: it reads the body with a size limit, routes, and
//! builds each handler's dependencies from Spin variables and sqlite. The logic lives
//! in `routes/`, `domain/`, `password.rs` and `store.rs`.
#![deny(missing_docs)]

pub mod domain;
pub mod password;
pub mod routes;
pub mod store;

use common::ApiError;
use common::config::{SessionConfig, Spin, jwt_secret};
use common::http::not_found;
use common::session::now;
use spin_sdk::http::{Params, Request, Response, Router};

use crate::password::{HashCost, Hasher};
use crate::routes::Deps;
use crate::store::SqliteUsers;

// Native builds (tests) skip the export: its WIT-style symbol names break the native
// cdylib link ("; expected" in the linker version script).
#[cfg(target_arch = "wasm32")]
#[spin_sdk::http_component]
async fn handle_auth(
    incoming: spin_sdk::http::IncomingRequest,
    response_out: spin_sdk::http::ResponseOutparam,
) {
    common::http::serve(incoming, response_out, router()).await
}

/// The auth routes. Anything else, including a known path with another method, is
/// the JSON 404 (spin-sdk's own fallback would be a plain-text 404 or 405).
pub fn router() -> Router {
    let mut router = Router::new();
    router.post("/api/users/signup", signup);
    router.post("/api/users/signin", signin);
    router.post("/api/users/signout", signout);
    router.get("/api/users/currentuser", current_user);
    router.any("/*", not_found);
    router
}

fn signup(req: Request, _: Params) -> Result<Response, ApiError> {
    routes::signup::handle(&req, &deps()?)
}

fn signin(req: Request, _: Params) -> Result<Response, ApiError> {
    routes::signin::handle(&req, &deps()?)
}

fn signout(_: Request, _: Params) -> Result<Response, ApiError> {
    Ok(routes::signout::handle(
        &SessionConfig::from_variables()?.cookie,
    ))
}

fn current_user(req: Request, _: Params) -> Result<Response, ApiError> {
    Ok(routes::current_user::handle(
        &req,
        &jwt_secret(&Spin)?,
        now(),
    ))
}

/// Dependencies of signup and signin, from Spin variables and the `auth` database.
fn deps() -> anyhow::Result<Deps<SqliteUsers>> {
    Ok(Deps {
        session: SessionConfig::from_variables()?,
        hasher: Hasher::new(HashCost::from_source(&Spin)?)?,
        store: SqliteUsers::open()?,
        now: now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use spin_sdk::http::Method;

    #[test]
    fn unknown_routes_and_methods_are_json_404s() {
        // Only paths that stop before a handler (which would call into Spin).
        common::testing::assert_json_404s(
            &router(),
            &[
                (Method::Get, "/api/users/signup"),
                (Method::Put, "/api/users/signin"),
                (Method::Delete, "/api/users/currentuser"),
                (Method::Head, "/api/users/currentuser"),
                (Method::Post, "/api/users/currentuser"),
                (Method::Get, "/api/users/nope"),
                (Method::Get, "/api/users"),
                (Method::Get, "/"),
                (Method::Other("BREW".into()), "/api/users/signout"),
            ],
        );
    }
}
