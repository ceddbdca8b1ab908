//! Who is calling. Every handler receives a [`Principal`]; tokens and roles arrive with the
//! access-control work. Until then the only principal is the development principal, which
//! exists only when the server was started with `--dev-principal`, and says so loudly.

use std::future::{ready, Ready};

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};

use crate::error::ApiError;
use crate::state::ApiConfig;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub subject: String,
    pub role: String,
    pub council: Option<String>,
}

impl Principal {
    /// The development principal: an administrator named `dev`.
    pub fn development() -> Self {
        Principal { subject: "dev".into(), role: "admin".into(), council: None }
    }
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let allowed = req.app_data::<web::Data<ApiConfig>>().is_some_and(|c| c.dev_principal);
        ready(if allowed { Ok(Principal::development()) } else { Err(ApiError::Unauthorized) })
    }
}
