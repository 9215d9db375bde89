//! Integration tests, compiled as one binary.

mod support;

mod candidates;
#[cfg(feature = "cli")]
mod cli;
#[cfg(feature = "cli")]
mod databases;
mod determinism;
mod distortion;
#[cfg(feature = "dsc")]
mod dsc;
mod false_positives;
#[cfg(feature = "cli")]
mod fidelity;
#[cfg(feature = "cli")]
mod files;
mod keys;
#[cfg(feature = "files")]
mod pseudo_column;
#[cfg(feature = "cli")]
mod pseudo_rows;
#[cfg(all(feature = "server", feature = "cli"))]
mod restart;
mod robustness;
mod roundtrip;
#[cfg(feature = "server")]
mod server;
#[cfg(feature = "server")]
mod server_db;
#[cfg(feature = "dsc")]
mod signing;
mod tallies;
#[cfg(feature = "cli")]
mod time_keys;
#[cfg(feature = "cli")]
mod virtual_key;
