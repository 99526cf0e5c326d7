//! Query parsing speed on representative queries, from one word to a long
//! query with every construct.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

const QUERIES: [(&str, &str); 10] = [
    ("word", "invoice"),
    ("two_words", "quarterly report"),
    ("phrase", "\"quarterly report for q3\""),
    ("field", "from:alice@example.org"),
    ("negation", "budget -draft -\"do not reply\""),
    ("or", "report OR memo OR minutes"),
    (
        "filters",
        "in:inbox is:unread has:attachment after:2024-01-01 before:2024-07-01",
    ),
    ("split_words", "o'reilly apt-get e-mail 10:30"),
    (
        "groups",
        "(from:alice OR from:bob) (subject:budget OR subject:forecast) -(is:read label:archive)",
    ),
    (
        "everything",
        "from:alice to:\"Bob Smith\" \"quarterly report\" -draft (budget OR forecast) \
         filename:report.pdf label:\"Project X\" after:2024-01-01 is:unread has:attachment",
    ),
];

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("query_parse");
    for (name, q) in QUERIES {
        assert!(sealdex::query::parse(q).is_ok(), "{name}");
        group.bench_function(name, |b| b.iter(|| sealdex::query::parse(black_box(q))));
    }
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
