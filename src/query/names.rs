//! The names of the query language: which `NAME:` prefixes stand for a
//! field or a filter, shared by the parser (to read them) and the syntax
//! tree's printer (to know when a bare word must be quoted).
//!
//! Field names come from [`Field::ALL`] and [`Field::name`], so a field
//! added to the record is a `name:` term here without a change; only the
//! filters, which each have a meaning of their own, are listed.

use crate::record::Field;

/// What a `NAME:` prefix stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Key {
    /// A text field: `subject:`, `from:`, …
    Field(Field),
    In,
    Label,
    After,
    Before,
    Has,
    Is,
    Kind,
}

/// The filters, by name, in the order error messages list them.
const FILTERS: [(&str, Key); 7] = [
    ("in", Key::In),
    ("label", Key::Label),
    ("after", Key::After),
    ("before", Key::Before),
    ("has", Key::Has),
    ("is", Key::Is),
    ("kind", Key::Kind),
];

/// The field or filter that `name` (any case) names, if any.
pub(super) fn key(name: &str) -> Option<Key> {
    Field::ALL
        .into_iter()
        .find(|f| f.name().eq_ignore_ascii_case(name))
        .map(Key::Field)
        .or_else(|| {
            FILTERS
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|&(_, key)| key)
        })
}

/// Every known `NAME:`, fields first, for error messages:
/// `from:, to:, …, kind:`.
pub(super) fn known() -> String {
    Field::ALL
        .iter()
        .map(|f| f.name())
        .chain(FILTERS.iter().map(|(n, _)| *n))
        .map(|n| format!("{n}:"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_and_filter_has_its_name() {
        for f in Field::ALL {
            assert_eq!(key(f.name()), Some(Key::Field(f)));
            assert_eq!(key(&f.name().to_uppercase()), Some(Key::Field(f)));
        }
        assert_eq!(key("Kind"), Some(Key::Kind));
        assert_eq!(key("cc"), None);
        let known = known();
        assert!(known.starts_with("subject:, body:"), "{known}");
        assert!(known.contains("location:") && known.ends_with("kind:"));
    }
}
