//! Integration tests, compiled as one binary.

mod support;

mod determinism;
mod distortion;
mod false_positives;
mod keys;
mod robustness;
mod roundtrip;
