//! Who may call the API: HTTP Basic with the `[mica]` credentials. mica-mqtt 2.6.7+
//! matches path and method first (an unknown route is 404 with or without
//! credentials), then checks credentials, then runs the handler; an extractor runs in
//! exactly that place, so every handler takes [`Authorized`] as its first argument.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use mqgate_kit::http::basic_auth::{BasicCredentials, BasicOutcome, SchemeCheck};

use crate::error::Error;

/// Proof that the request carried the configured credentials; 401 `{"code":103}`
/// otherwise.
#[derive(Debug, Clone, Copy)]
pub struct Authorized;

#[axum::async_trait]
impl<S> FromRequestParts<S> for Authorized
where
    S: Send + Sync,
    Arc<BasicCredentials>: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        let credentials = Arc::<BasicCredentials>::from_ref(state);
        // mica reads the token after any six characters: the scheme word is not checked.
        match credentials.check(&parts.headers, SchemeCheck::Ignored) {
            BasicOutcome::Authorized => Ok(Authorized),
            _ => Err(Error::Unauthorized),
        }
    }
}
