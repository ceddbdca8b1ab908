//! Access control: JWT verification and issuing, the roles (`admin`, `analyst`, `council`,
//! `consumer`, `auditor`) and their policies written against attribute classifications,
//! field redaction and per-agreement pseudonyms for third parties.
//!
//! Status: the crate is laid out; its types arrive with the access-control issue.
//!
//! This crate must never depend on actix-web or any HTTP type: the API layer adapts it.
//! It reads the model only; it never writes to the store.
