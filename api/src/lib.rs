//! The HTTP application: REST under `/v1`, GraphQL, OpenAPI, `/health` and `/metrics`,
//! served by actix-web through one app factory, `create_app(state, config)`, used by the
//! binary and by the tests.
//!
//! Status: the crate is laid out; its routes arrive with the API issue.
//!
//! Wire types (`*View`) live here, never in the store or the model. Handlers never block a
//! worker thread on the store: writes go through the store's single writer thread.
