#![no_main]
//! See properties::flux_escape for what is checked.
use libfuzzer_sys::fuzz_target;

#[path = "../properties.rs"]
mod properties;

fuzz_target!(|data: &[u8]| properties::flux_escape(data));
