//! Access control: who a caller is and what they may see and do.
//!
//! Main types: [`TokenVerifier`] and [`TokenIssuer`] (JWTs with pinned algorithms: HS256
//! from a secret, RS256/ES256 from a JWKS file), [`Principal`] and [`Role`], [`Agreement`]s
//! for third-party consumers, the [`Pseudonymiser`] that replaces entity ids per agreement,
//! and the [`Viewer`] whose rules decide, by attribute classification (identifiable,
//! sensitive, plain) and never by field name, what each role sees of an entity, a change
//! and a link.
//!
//! This crate must never depend on actix-web or any HTTP type (the API adapts it), and it
//! never touches the store: facts it needs are looked up by its caller and handed in.

mod agreement;
mod error;
pub mod generalise;
mod policy;
mod principal;
mod pseudonym;
mod token;

pub use agreement::{Agreement, Agreements, DatePrecision};
pub use error::{AuthError, Result};
pub use policy::{Denied, Viewer};
pub use principal::{Principal, Role};
pub use pseudonym::Pseudonymiser;
pub use token::{Claims, TokenIssuer, TokenSettings, TokenVerifier};
