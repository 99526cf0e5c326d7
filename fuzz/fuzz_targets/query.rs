//! Fuzzes the query parser: no input may panic, and every query that parses
//! must print (`Display`) to text that parses back to the same query.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        match sealdex::query::parse(s) {
            Ok(q) => {
                let shown = q.to_string();
                assert_eq!(
                    sealdex::query::parse(&shown).as_ref(),
                    Ok(&q),
                    "{s:?} printed as {shown:?} does not parse back"
                );
            }
            Err(e) => {
                assert!(e.position <= s.len() && s.is_char_boundary(e.position));
            }
        }
    }
});
