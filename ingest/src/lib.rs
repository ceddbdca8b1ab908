//! Ingest: format adapters (CSV and pipe-delimited text, spreadsheets, XML, HL7 v2),
//! per-council mapping profiles from local values to national codes, validation, and the
//! row-level submission report.
//!
//! Status: being built with the ingest issue; see each module's docs for what is there.
//!
//! This crate must never know about HTTP: the API and the command line hand it bytes and a
//! council, and it answers with a report after committing through `pole-store`.

pub mod hl7;
