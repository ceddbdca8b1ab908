//! The `pole-ods` command line's library half: the demo data generator and command
//! implementations, shared by `main.rs`, the benchmarks and the end-to-end tests.

pub mod demo;
