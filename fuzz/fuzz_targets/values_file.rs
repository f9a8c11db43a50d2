#![no_main]
//! See properties::values_file for what is checked.
use libfuzzer_sys::fuzz_target;

#[path = "../properties.rs"]
mod properties;

fuzz_target!(|data: &[u8]| properties::values_file(data));
