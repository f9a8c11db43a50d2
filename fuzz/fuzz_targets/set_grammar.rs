#![no_main]
//! See properties::set_grammar for what is checked.
use libfuzzer_sys::fuzz_target;

#[path = "../properties.rs"]
mod properties;

fuzz_target!(|data: &[u8]| properties::set_grammar(data));
