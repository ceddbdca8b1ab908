//! The event-sourced store (work in progress: request and outcome types).

mod outcome;
mod request;

pub use outcome::{Committed, Rejection};
pub use request::{ChangeRequest, OpRequest, Target, TransactionRequest};
