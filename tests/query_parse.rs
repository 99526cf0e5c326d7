//! The query parser: every construct, every error with its position, and
//! property tests (round trip through `Display`, no panic on any input).

use proptest::prelude::*;
use sealdex::query::{Filter, MAX_DEPTH, Query, QueryErrorKind, Term, parse};
use sealdex::{ContentKind, Field};

fn ok(q: &str) -> Query {
    match parse(q) {
        Ok(parsed) => {
            // Every successful parse round-trips through Display.
            let shown = parsed.to_string();
            assert_eq!(
                parse(&shown).as_ref(),
                Ok(&parsed),
                "{q:?} printed as {shown:?}"
            );
            parsed
        }
        Err(e) => panic!("{q:?} should parse: {e}"),
    }
}

#[track_caller]
fn fails(q: &str, kind: QueryErrorKind, position: usize) -> String {
    match parse(q) {
        Ok(parsed) => panic!("{q:?} should fail, parsed as {parsed:?}"),
        Err(e) => {
            assert_eq!((e.kind, e.position), (kind, position), "{q:?}: {e}");
            let shown = e.to_string();
            assert!(shown.contains(&format!("at byte {position}")), "{shown}");
            e.message
        }
    }
}

fn w(t: &str) -> Query {
    Query::Term(Term::word(t))
}
fn p(t: &str) -> Query {
    Query::Term(Term::phrase(t))
}
fn fw(f: Field, t: &str) -> Query {
    Query::Term(Term::word(t).in_field(f))
}
fn fp(f: Field, t: &str) -> Query {
    Query::Term(Term::phrase(t).in_field(f))
}
fn not(q: Query) -> Query {
    Query::Not(Box::new(q))
}
fn and(v: Vec<Query>) -> Query {
    Query::And(v)
}
fn or(v: Vec<Query>) -> Query {
    Query::Or(v)
}
fn filt(f: Filter) -> Query {
    Query::Filter(f)
}

// ---- terms -------------------------------------------------------------

#[test]
fn single_word() {
    assert_eq!(ok("hello"), w("hello"));
    assert_eq!(ok("  hello\t\n"), w("hello"));
    assert_eq!(ok("Grüße"), w("Grüße"));
    assert_eq!(ok("日本語"), w("日本語"));
}

#[test]
fn implicit_and() {
    assert_eq!(ok("a b  c"), and(vec![w("a"), w("b"), w("c")]));
    assert_eq!(
        ok("a\u{3000}b"),
        and(vec![w("a"), w("b")]),
        "ideographic space separates"
    );
}

#[test]
fn phrase() {
    assert_eq!(ok("\"a quoted phrase\""), p("a quoted phrase"));
    assert_eq!(ok("x \"a b\" y"), and(vec![w("x"), p("a b"), w("y")]));
    // Text inside quotes is kept as typed, operators and fields included.
    assert_eq!(ok("\" OR from:x (\""), p(" OR from:x ("));
    assert_eq!(ok("\"one\""), p("one"));
    // A phrase may touch what follows.
    assert_eq!(ok("\"a b\"c"), and(vec![p("a b"), w("c")]));
    assert_eq!(ok("\"a\"\"b\""), and(vec![p("a"), p("b")]));
}

#[test]
fn words_the_normaliser_splits_stay_whole() {
    for word in [
        "o'reilly",
        "apt-get",
        "e-mail",
        "10:30",
        "alice@example.org",
        "a.b,c",
        "1:2:3",
    ] {
        assert_eq!(ok(word), w(word), "{word}");
    }
    // Unknown NAME with nothing after the colon is a word.
    assert_eq!(ok("re: lunch"), and(vec![w("re:"), w("lunch")]));
    assert_eq!(ok("(re:)"), w("re:"));
    assert_eq!(ok("e-mail:x"), w("e-mail:x"));
}

#[test]
fn words_end_at_parentheses() {
    assert_eq!(ok("a(b)c"), and(vec![w("a"), w("b"), w("c")]));
}

// ---- operators ---------------------------------------------------------

#[test]
fn negation() {
    assert_eq!(ok("-spam"), not(w("spam")));
    assert_eq!(ok("-\"a b\""), not(p("a b")));
    assert_eq!(ok("-from:bob"), not(fw(Field::From, "bob")));
    assert_eq!(ok("-(a OR b)"), not(or(vec![w("a"), w("b")])));
    assert_eq!(ok("-(a b)"), not(and(vec![w("a"), w("b")])));
    assert_eq!(ok("-is:unread"), not(filt(Filter::IsUnread)));
    assert_eq!(ok("--a"), not(not(w("a"))));
    assert_eq!(ok("a -b"), and(vec![w("a"), not(w("b"))]));
    // Only negations is valid; the planner decides what it means.
    assert_eq!(ok("-a -b"), and(vec![not(w("a")), not(w("b"))]));
}

#[test]
fn lone_minus_is_a_word() {
    assert_eq!(ok("a - b"), and(vec![w("a"), w("-"), w("b")]));
    assert_eq!(ok("-"), w("-"));
    assert_eq!(ok("(a -)"), and(vec![w("a"), w("-")]));
    assert_eq!(ok("--"), not(w("-")));
    assert_eq!(ok("a-"), w("a-"));
}

#[test]
fn or_binds_tighter_than_and() {
    assert_eq!(ok("a OR b"), or(vec![w("a"), w("b")]));
    assert_eq!(ok("a b OR c"), and(vec![w("a"), or(vec![w("b"), w("c")])]));
    assert_eq!(ok("a OR b c"), and(vec![or(vec![w("a"), w("b")]), w("c")]));
    assert_eq!(ok("a OR b OR c"), or(vec![w("a"), w("b"), w("c")]));
    assert_eq!(ok("-a OR b"), or(vec![not(w("a")), w("b")]));
    assert_eq!(
        ok("from:alice report OR memo"),
        and(vec![
            fw(Field::From, "alice"),
            or(vec![w("report"), w("memo")])
        ])
    );
}

#[test]
fn lowercase_or_and_are_words() {
    assert_eq!(ok("a or b"), and(vec![w("a"), w("or"), w("b")]));
    assert_eq!(ok("a and b"), and(vec![w("a"), w("and"), w("b")]));
    assert_eq!(
        ok("Or ORANGE \"OR\""),
        and(vec![w("Or"), w("ORANGE"), p("OR")])
    );
    assert_eq!(ok("from:OR"), fw(Field::From, "OR"));
}

#[test]
fn explicit_and_is_a_no_op() {
    assert_eq!(ok("a AND b"), ok("a b"));
    assert_eq!(
        ok("a AND b OR c"),
        and(vec![w("a"), or(vec![w("b"), w("c")])])
    );
    assert_eq!(
        ok("(a AND b) OR c"),
        or(vec![and(vec![w("a"), w("b")]), w("c")])
    );
}

#[test]
fn parentheses_group_and_flatten() {
    assert_eq!(ok("(a)"), w("a"));
    assert_eq!(ok("((a))"), w("a"));
    assert_eq!(ok("(a b) c"), and(vec![w("a"), w("b"), w("c")]));
    assert_eq!(ok("(a OR b) OR c"), or(vec![w("a"), w("b"), w("c")]));
    assert_eq!(
        ok("(a b) OR c"),
        or(vec![and(vec![w("a"), w("b")]), w("c")])
    );
    assert_eq!(
        ok("(a OR b) (c OR d)"),
        and(vec![or(vec![w("a"), w("b")]), or(vec![w("c"), w("d")])])
    );
}

// ---- fields and filters ----------------------------------------------------

#[test]
fn fields() {
    assert_eq!(ok("from:alice"), fw(Field::From, "alice"));
    assert_eq!(ok("to:bob"), fw(Field::To, "bob"));
    assert_eq!(ok("subject:hi"), fw(Field::Subject, "hi"));
    assert_eq!(ok("body:x"), fw(Field::Body, "x"));
    assert_eq!(ok("filename:report.pdf"), fw(Field::Filename, "report.pdf"));
    assert_eq!(ok("From:Alice"), fw(Field::From, "Alice"));
    assert_eq!(ok("SUBJECT:x"), fw(Field::Subject, "x"));
    assert_eq!(ok("from:\"Alice Smith\""), fp(Field::From, "Alice Smith"));
    // The value is one bare word, whatever it holds.
    assert_eq!(
        ok("from:alice@example.org"),
        fw(Field::From, "alice@example.org")
    );
    assert_eq!(ok("subject:http://x"), fw(Field::Subject, "http://x"));
    assert_eq!(ok("from:-x"), fw(Field::From, "-x"));
    assert_eq!(ok("(from:a)"), fw(Field::From, "a"));
}

#[test]
fn folder_and_label_filters() {
    assert_eq!(ok("in:inbox"), filt(Filter::In("inbox".into())));
    assert_eq!(ok("IN:Inbox"), filt(Filter::In("Inbox".into())));
    assert_eq!(ok("label:work"), filt(Filter::Label("work".into())));
    assert_eq!(
        ok("label:\"Project X\""),
        filt(Filter::Label("Project X".into()))
    );
    assert_eq!(ok("in:a/b"), filt(Filter::In("a/b".into())));
}

#[test]
fn date_filters() {
    assert_eq!(ok("after:1970-01-01"), filt(Filter::After(0)));
    assert_eq!(ok("after:2024-01-31"), filt(Filter::After(1_706_659_200)));
    assert_eq!(ok("before:2024-02-29"), filt(Filter::Before(1_709_164_800)));
    assert_eq!(ok("before:1969-12-31"), filt(Filter::Before(-86_400)));
    assert_eq!(
        ok("after:\"2024-01-31\""),
        filt(Filter::After(1_706_659_200))
    );
    assert_eq!(
        ok("after:2024-01-01 before:2024-02-01"),
        and(vec![
            filt(Filter::After(1_704_067_200)),
            filt(Filter::Before(1_706_745_600))
        ])
    );
}

#[test]
fn flag_filters() {
    assert_eq!(ok("has:attachment"), filt(Filter::HasAttachment));
    assert_eq!(ok("HAS:Attachment"), filt(Filter::HasAttachment));
    assert_eq!(ok("is:unread"), filt(Filter::IsUnread));
    assert_eq!(ok("is:read"), filt(Filter::IsRead));
    assert_eq!(ok("is:flagged"), filt(Filter::IsFlagged));
    assert_eq!(ok("is:starred"), filt(Filter::IsFlagged));
    assert_eq!(ok("Is:UNREAD"), filt(Filter::IsUnread));
}

#[test]
fn kind_filters_and_kind_fields() {
    for kind in ContentKind::ALL {
        let q = format!("kind:{}", kind.name());
        assert_eq!(ok(&q), filt(Filter::Kind(kind)));
        assert_eq!(ok(&q.to_uppercase()), filt(Filter::Kind(kind)));
        assert_eq!(ok(&q).to_string(), q);
    }
    assert_eq!(
        ok("kind:event location:berlin"),
        Query::And(vec![
            filt(Filter::Kind(ContentKind::Event)),
            fw(Field::Location, "berlin")
        ])
    );
    assert_eq!(ok("Location:\"Room 4\""), fp(Field::Location, "Room 4"));
    // Every field of the record is a `name:` term.
    for f in Field::ALL {
        assert_eq!(ok(&format!("{}:x", f.name())), fw(f, "x"));
    }
    let msg = fails("kind:email", QueryErrorKind::UnknownFilterValue, 5);
    assert!(
        msg.contains("kind:mail") && msg.contains("kind:file"),
        "{msg}"
    );
    fails("kind: mail", QueryErrorKind::MissingValue, 5);
    let msg = fails("cc:bob", QueryErrorKind::UnknownField, 0);
    assert!(msg.contains("location:") && msg.contains("kind:"), "{msg}");
}

#[test]
fn everything_together() {
    let q = ok(
        "from:alice \"quarterly report\" -draft (budget OR forecast) after:2024-01-01 is:unread",
    );
    assert_eq!(
        q,
        and(vec![
            fw(Field::From, "alice"),
            p("quarterly report"),
            not(w("draft")),
            or(vec![w("budget"), w("forecast")]),
            filt(Filter::After(1_704_067_200)),
            filt(Filter::IsUnread),
        ])
    );
}

// ---- display -------------------------------------------------------------

#[test]
fn display_is_canonical() {
    let cases = [
        ("from:alice -spam", "from:alice -spam"),
        ("From:Alice", "from:Alice"),
        ("a b OR c", "a (b OR c)"),
        ("a AND b", "a b"),
        ("(a b) OR c", "(a b) OR c"),
        ("-(a OR b)", "-(a OR b)"),
        ("\"a b\"c", "\"a b\" c"),
        (
            "label:\"Project X\" in:inbox",
            "label:\"Project X\" in:inbox",
        ),
        ("in:\"inbox\"", "in:inbox"),
        ("is:starred HAS:attachment", "is:flagged has:attachment"),
        ("after:2024-02-29", "after:2024-02-29"),
        ("((a))", "a"),
        ("--", "--"),
    ];
    for (input, shown) in cases {
        assert_eq!(ok(input).to_string(), shown, "{input}");
    }
    assert_eq!("a OR b".parse::<Query>(), parse("a OR b"));
}

// ---- errors ---------------------------------------------------------------

#[test]
fn empty() {
    fails("", QueryErrorKind::Empty, 0);
    fails("   \t\n", QueryErrorKind::Empty, 0);
}

#[test]
fn quotes() {
    fails("\"abc", QueryErrorKind::UnbalancedQuote, 0);
    fails("a \"b c", QueryErrorKind::UnbalancedQuote, 2);
    fails("\"a\" \"b", QueryErrorKind::UnbalancedQuote, 4);
    fails("from:\"abc", QueryErrorKind::UnbalancedQuote, 5);
    fails("foo\"bar", QueryErrorKind::QuoteInWord, 3);
    fails("foo\"bar\"", QueryErrorKind::QuoteInWord, 3);
    fails("from:al\"ice", QueryErrorKind::QuoteInWord, 7);
    fails("\"\"", QueryErrorKind::EmptyPhrase, 0);
    fails("a \"  \"", QueryErrorKind::EmptyPhrase, 2);
    fails("in:\"\"", QueryErrorKind::EmptyPhrase, 3);
}

#[test]
fn parentheses() {
    fails("(a", QueryErrorKind::UnbalancedParen, 0);
    fails("x (a (b)", QueryErrorKind::UnbalancedParen, 2);
    fails("(", QueryErrorKind::UnbalancedParen, 0);
    fails("a)", QueryErrorKind::UnbalancedParen, 1);
    fails(")", QueryErrorKind::UnbalancedParen, 0);
    fails("(a) b)", QueryErrorKind::UnbalancedParen, 5);
    fails("()", QueryErrorKind::EmptyGroup, 0);
    fails("a ( ) b", QueryErrorKind::EmptyGroup, 2);
    fails("-()", QueryErrorKind::EmptyGroup, 1);
}

#[test]
fn misplaced_or() {
    let msg = fails("OR a", QueryErrorKind::UnexpectedOr, 0);
    assert!(msg.contains("lowercase"), "{msg}");
    fails("a OR", QueryErrorKind::UnexpectedOr, 2);
    fails("a OR OR b", QueryErrorKind::UnexpectedOr, 5);
    fails("(OR a)", QueryErrorKind::UnexpectedOr, 1);
    fails("(a OR) b", QueryErrorKind::UnexpectedOr, 3);
    fails("a -OR", QueryErrorKind::UnexpectedOr, 3);
    fails("a OR AND b", QueryErrorKind::UnexpectedOr, 2);
    fails("a AND OR b", QueryErrorKind::UnexpectedOr, 6);
    fails("OR", QueryErrorKind::UnexpectedOr, 0);
}

#[test]
fn misplaced_and() {
    fails("AND a", QueryErrorKind::UnexpectedAnd, 0);
    fails("a AND", QueryErrorKind::UnexpectedAnd, 2);
    fails("a AND AND b", QueryErrorKind::UnexpectedAnd, 6);
    fails("(a AND)", QueryErrorKind::UnexpectedAnd, 3);
    fails("-AND", QueryErrorKind::UnexpectedAnd, 1);
}

#[test]
fn unknown_fields() {
    let msg = fails("foo:bar", QueryErrorKind::UnknownField, 0);
    assert!(msg.contains("\"foo:bar\""), "{msg}");
    let msg = fails("see http://x", QueryErrorKind::UnknownField, 4);
    assert!(msg.contains("\"http://x\""), "{msg}");
    fails("-cc:bob", QueryErrorKind::UnknownField, 1);
    fails("form:alice", QueryErrorKind::UnknownField, 0);
    fails("x:\"y z\"", QueryErrorKind::UnknownField, 0);
    fails("a (mailto:x)", QueryErrorKind::UnknownField, 3);
}

#[test]
fn missing_values() {
    fails("from:", QueryErrorKind::MissingValue, 5);
    fails("from: alice", QueryErrorKind::MissingValue, 5);
    let msg = fails("subject:(a b)", QueryErrorKind::MissingValue, 8);
    assert!(msg.contains("OR"), "{msg}");
    fails("(to:)", QueryErrorKind::MissingValue, 4);
    fails("a in:", QueryErrorKind::MissingValue, 5);
    fails("is: unread", QueryErrorKind::MissingValue, 3);
    fails("after:", QueryErrorKind::MissingValue, 6);
}

#[test]
fn bad_dates() {
    for bad in [
        "2024-13-01",
        "2024-02-30",
        "2023-02-29",
        "yesterday",
        "2024-1-01",
        "24-01-01",
        "2024-01-1",
        "+2024-01-01",
        "2024/01/01",
        "2024-01-01T00:00",
        "20240101",
        "２０２４-01-01",
    ] {
        let msg = fails(&format!("x after:{bad}"), QueryErrorKind::BadDate, 8);
        assert!(msg.contains("YYYY-MM-DD"), "{msg}");
        fails(&format!("before:{bad}"), QueryErrorKind::BadDate, 7);
    }
}

#[test]
fn unknown_filter_values() {
    fails("has:attachments", QueryErrorKind::UnknownFilterValue, 4);
    fails("has:pdf", QueryErrorKind::UnknownFilterValue, 4);
    let msg = fails("a is:important", QueryErrorKind::UnknownFilterValue, 5);
    assert!(msg.contains("is:unread"), "{msg}");
}

#[test]
fn first_error_wins() {
    fails(") \"abc", QueryErrorKind::UnbalancedParen, 0);
    fails("\"abc )", QueryErrorKind::UnbalancedQuote, 0);
    fails("foo:x after:bad", QueryErrorKind::UnknownField, 0);
}

#[test]
fn nesting_is_limited() {
    let depth_ok = format!("{}a{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert_eq!(ok(&depth_ok), w("a"));
    let too_deep = format!(
        "{}a{}",
        "(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    fails(&too_deep, QueryErrorKind::TooDeep, MAX_DEPTH);
    fails(
        &format!("{}a", "-".repeat(MAX_DEPTH + 1)),
        QueryErrorKind::TooDeep,
        MAX_DEPTH,
    );
    fails(&"-(".repeat(MAX_DEPTH), QueryErrorKind::TooDeep, MAX_DEPTH);
    // Far past the limit: an error, not a stack overflow.
    let huge = "(".repeat(1_000_000);
    assert_eq!(parse(&huge).unwrap_err().kind, QueryErrorKind::TooDeep);
    let huge = "-".repeat(1_000_000) + "a";
    assert_eq!(parse(&huge).unwrap_err().kind, QueryErrorKind::TooDeep);
}

#[test]
fn long_flat_queries_are_fine() {
    let q = "a OR ".repeat(100_000) + "b";
    let Query::Or(items) = ok(&q) else { panic!() };
    assert_eq!(items.len(), 100_001);
    let q = "x ".repeat(100_000);
    let Query::And(items) = ok(&q) else { panic!() };
    assert_eq!(items.len(), 100_000);
}

// ---- properties ----------------------------------------------------------

/// Text that parses back as a bare word in the default fields.
fn arb_word() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9]{0,8}",
        "[a-zA-Z0-9@.'_-]{1,6}[a-z0-9]",
        "[0-9]{1,2}:[0-9]{2}",
        "[a-z]{1,5}:",
        "\\PC{1,6}",
        Just("-".to_owned()),
        Just("or".to_owned()),
    ]
    .prop_filter("parses as one bare word", |s| {
        parse(s) == Ok(Query::Term(Term::word(s.clone())))
    })
}

/// Text that can stand after `field:` unquoted.
fn arb_value() -> impl Strategy<Value = String> {
    "[^\\s\"()]{1,10}"
}

fn arb_phrase() -> impl Strategy<Value = String> {
    "[^\"]{0,12}".prop_filter("not blank", |s| !s.trim().is_empty())
}

fn arb_field() -> impl Strategy<Value = Field> {
    proptest::sample::select(Field::ALL.to_vec())
}

fn arb_day() -> impl Strategy<Value = i64> {
    // 0000-01-01 to 9999-12-31, at the start of a day.
    (-719_528i64..2_932_897).prop_map(|d| d * 86_400)
}

fn arb_leaf() -> impl Strategy<Value = Query> {
    prop_oneof![
        arb_word().prop_map(|t| Query::Term(Term::word(t))),
        arb_phrase().prop_map(|t| Query::Term(Term::phrase(t))),
        (arb_field(), arb_value()).prop_map(|(f, t)| Query::Term(Term::word(t).in_field(f))),
        (arb_field(), arb_phrase()).prop_map(|(f, t)| Query::Term(Term::phrase(t).in_field(f))),
        prop_oneof![arb_value(), arb_phrase()].prop_map(|n| Query::Filter(Filter::In(n))),
        prop_oneof![arb_value(), arb_phrase()].prop_map(|n| Query::Filter(Filter::Label(n))),
        arb_day().prop_map(|d| Query::Filter(Filter::After(d))),
        arb_day().prop_map(|d| Query::Filter(Filter::Before(d))),
        Just(Query::Filter(Filter::HasAttachment)),
        Just(Query::Filter(Filter::IsUnread)),
        Just(Query::Filter(Filter::IsRead)),
        Just(Query::Filter(Filter::IsFlagged)),
        proptest::sample::select(ContentKind::ALL.to_vec())
            .prop_map(|k| Query::Filter(Filter::Kind(k))),
    ]
}

/// Any query tree, not necessarily in the parser's normal form.
fn arb_query() -> impl Strategy<Value = Query> {
    arb_leaf().prop_recursive(6, 48, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 1..4).prop_map(Query::And),
            proptest::collection::vec(inner.clone(), 1..4).prop_map(Query::Or),
            inner.prop_map(|q| Query::Not(Box::new(q))),
        ]
    })
}

/// The parser's normal form: nested AND in AND and OR in OR flattened,
/// one-child nodes collapsed.
fn normalise(q: Query) -> Query {
    fn build(children: Vec<Query>, and: bool) -> Query {
        let mut flat = Vec::new();
        for c in children.into_iter().map(normalise) {
            match c {
                Query::And(v) if and => flat.extend(v),
                Query::Or(v) if !and => flat.extend(v),
                other => flat.push(other),
            }
        }
        if flat.len() == 1 {
            flat.pop().unwrap()
        } else if and {
            Query::And(flat)
        } else {
            Query::Or(flat)
        }
    }
    match q {
        Query::And(v) => build(v, true),
        Query::Or(v) => build(v, false),
        Query::Not(inner) => Query::Not(Box::new(normalise(*inner))),
        leaf => leaf,
    }
}

/// Characters that exercise the grammar, plus some multi-byte ones.
fn arb_query_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("("),
        Just(")"),
        Just("\""),
        Just("-"),
        Just(" "),
        Just("OR"),
        Just("AND"),
        Just(":"),
        Just("from:"),
        Just("in:"),
        Just("is:"),
        Just("after:"),
        Just("2024-01-01"),
        Just("a"),
        Just("bc"),
        Just("é"),
        Just("日"),
        Just("\u{3000}"),
        Just("x:"),
        Just("10"),
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

fn check_any_input(s: &str) -> Result<(), TestCaseError> {
    match parse(s) {
        Ok(q) => prop_assert_eq!(parse(&q.to_string()), Ok(q)),
        Err(e) => {
            prop_assert!(e.position <= s.len(), "{} > {}", e.position, s.len());
            prop_assert!(s.is_char_boundary(e.position));
            prop_assert!(!e.message.is_empty());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn display_round_trips(q in arb_query()) {
        let shown = q.to_string();
        let expected = normalise(q);
        prop_assert_eq!(parse(&shown), Ok(expected), "shown as {:?}", shown);
    }

    #[test]
    fn any_string_is_safe(s in "\\PC{0,40}") {
        check_any_input(&s)?;
    }

    #[test]
    fn grammar_soup_is_safe(s in arb_query_text()) {
        check_any_input(&s)?;
    }
}
