//! Integration tests, compiled as one binary.

mod support;

#[cfg(feature = "cli")]
mod cli;
mod determinism;
mod distortion;
#[cfg(feature = "dsc")]
mod dsc;
mod false_positives;
mod keys;
mod robustness;
mod roundtrip;
