//! Query mapping: owns the translation of a planned query into tantivy
//! queries with exactly the forward scan's semantics.
//!
//! The planner (`query::plan`) has already normalised every text term into
//! tokens with the one normaliser, so this module only chooses tantivy's
//! query for each shape the forward scan knows:
//!
//! | plan                                     | tantivy                                        |
//! |------------------------------------------|------------------------------------------------|
//! | word `ab` (one token of 1–2 characters)  | one term of the field's short-prefix companion |
//! | word `abc` (one token, prefix)           | the term range `[abc, abd)` of the field       |
//! | split word `o'rei` (tokens, last prefix) | `SplitWordQuery` (`split`): exact terms, then any expansion |
//! | phrase `"a b"` (all exact)               | `PhraseQuery` (one token: `TermQuery`)         |
//! | no field given                           | the same query on each text field, OR-ed       |
//! | `in:` `label:`                           | `TermQuery` on the case-folded `folder` field  |
//! | `is:` `has:`                             | `TermQuery` on the `flag` field; `is:read` is NOT `unread` |
//! | `after:` `before:`                       | a range on the `date` fast field (undated records never match) |
//! | AND, OR, NOT                             | `BooleanQuery` with MUST, SHOULD, MUST_NOT (NOT alone: all records but) |
//!
//! tantivy caps how many terms a prefix expands to (50 by default) so that a
//! query stays fast; the forward scan has no such cap, so here the cap is
//! lifted to the largest term count of any segment's field (tantivy reserves
//! room for the cap up front, so "no cap" would be an impossible
//! allocation): a one-letter prefix matches what the forward scan matches,
//! at the cost of visiting every term it covers.
//!
//! When scores are wanted (relevance order), a word also matches its exact
//! term through a scored `TermQuery`, so that BM25 ranks a record holding
//! `report` above one holding only `reporting` for the query `report`; the
//! prefix range adds a constant. Subject matches are boosted twice, as in
//! the forward scan's scorer.

use std::ops::Bound;

use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, ConstScoreQuery, EmptyQuery, Occur, PhrasePrefixQuery,
    PhraseQuery, Query as TQuery, RangeQuery, TermQuery,
};
use tantivy::schema::IndexRecordOption;
use tantivy::{Searcher, Term};

use super::schema::{
    FLAG_ATTACHMENT, FLAG_FLAGGED, FLAG_UNREAD, IndexSchema, SHORT_PREFIX_CHARS, UNDATED,
};
use super::split::SplitWordQuery;
use crate::query::Query;
use crate::query::plan::{self, FilterPlan, Needle, Plan};
use crate::record::Field;

/// Translates a parsed query into a tantivy query over [`IndexSchema`].
///
/// `scored` asks for relevance scores; without it, the cheapest query with
/// the same matches is built.
///
/// `searcher` is the one the query will run on: it bounds how many terms a
/// prefix may expand to.
///
/// ```
/// use sealdex::inverted::{IndexSchema, compile};
///
/// let schema = IndexSchema::new();
/// let index = tantivy::Index::create_in_ram(schema.schema().clone());
/// schema.register_tokenizer(&index);
/// let searcher = index.reader().unwrap().searcher();
/// let q = sealdex::query::parse("from:alice \"quarterly report\" -draft").unwrap();
/// let tq = compile(&q, &schema, &searcher, false);
/// assert_eq!(searcher.search(&*tq, &tantivy::collector::Count).unwrap(), 0);
/// ```
pub fn compile(
    query: &Query,
    schema: &IndexSchema,
    searcher: &Searcher,
    scored: bool,
) -> Box<dyn TQuery> {
    compile_plan(&plan::plan(query), schema, searcher, scored)
}

/// Translates a plan.
pub(crate) fn compile_plan(
    p: &Plan,
    schema: &IndexSchema,
    searcher: &Searcher,
    scored: bool,
) -> Box<dyn TQuery> {
    let ctx = Ctx {
        schema,
        searcher,
        scored,
    };
    ctx.compile(p)
}

struct Ctx<'a> {
    schema: &'a IndexSchema,
    searcher: &'a Searcher,
    scored: bool,
}

impl Ctx<'_> {
    fn compile(&self, p: &Plan) -> Box<dyn TQuery> {
        let schema = self.schema;
        match p {
            Plan::All => Box::new(AllQuery),
            Plan::Text(n) => self.text(n),
            Plan::Filter(f) => filter(f, schema),
            Plan::Not(inner) => not(self.compile(inner)),
            Plan::And(children) => {
                let mut clauses: Vec<(Occur, Box<dyn TQuery>)> = Vec::new();
                for c in children {
                    match c {
                        Plan::All => {}
                        Plan::Not(inner) => clauses.push((Occur::MustNot, self.compile(inner))),
                        other => clauses.push((Occur::Must, self.compile(other))),
                    }
                }
                if !clauses.iter().any(|(o, _)| *o == Occur::Must) {
                    // Only exclusions (or nothing): from all records.
                    clauses.push((Occur::Must, Box::new(AllQuery)));
                }
                Box::new(BooleanQuery::new(clauses))
            }
            Plan::Or(children) => {
                if children.iter().any(|c| matches!(c, Plan::All)) {
                    return Box::new(AllQuery);
                }
                Box::new(BooleanQuery::new(
                    children
                        .iter()
                        .map(|c| (Occur::Should, self.compile(c)))
                        .collect(),
                ))
            }
        }
    }
}

/// All records but those matching `q`.
fn not(q: Box<dyn TQuery>) -> Box<dyn TQuery> {
    Box::new(BooleanQuery::new(vec![
        (Occur::Must, Box::new(AllQuery)),
        (Occur::MustNot, q),
    ]))
}

fn filter(f: &FilterPlan, s: &IndexSchema) -> Box<dyn TQuery> {
    let flag = |name: &str| -> Box<dyn TQuery> {
        Box::new(TermQuery::new(
            Term::from_field_text(s.flag, name),
            IndexRecordOption::Basic,
        ))
    };
    match f {
        FilterPlan::Folder(name) => Box::new(TermQuery::new(
            Term::from_field_text(s.folder, name),
            IndexRecordOption::Basic,
        )),
        // Undated records hold UNDATED, below every date: never in range.
        FilterPlan::After(t) => Box::new(RangeQuery::new(
            Bound::Included(Term::from_field_i64(s.date, (*t).max(UNDATED + 1))),
            Bound::Unbounded,
        )),
        FilterPlan::Before(t) => Box::new(RangeQuery::new(
            Bound::Included(Term::from_field_i64(s.date, UNDATED + 1)),
            Bound::Excluded(Term::from_field_i64(s.date, *t)),
        )),
        FilterPlan::HasAttachment => flag(FLAG_ATTACHMENT),
        FilterPlan::Unread => flag(FLAG_UNREAD),
        FilterPlan::Flagged => flag(FLAG_FLAGGED),
        FilterPlan::Read => not(flag(FLAG_UNREAD)),
    }
}

impl Ctx<'_> {
    fn text(&self, n: &Needle) -> Box<dyn TQuery> {
        let scored = self.scored;
        let mut per_field: Vec<Box<dyn TQuery>> = Field::ALL
            .into_iter()
            .filter(|f| n.fields & (1 << (*f as u8)) != 0)
            .map(|f| {
                let q = self.text_in_field(n, f);
                if scored && f == Field::Subject {
                    Box::new(BoostQuery::new(q, 2.0)) as Box<dyn TQuery>
                } else {
                    q
                }
            })
            .collect();
        if per_field.len() == 1 {
            return per_field.remove(0);
        }
        Box::new(BooleanQuery::new(
            per_field.into_iter().map(|q| (Occur::Should, q)).collect(),
        ))
    }

    /// The most terms any segment holds for `field`: the expansion cap that
    /// is no cap.
    fn max_terms(&self, field: tantivy::schema::Field) -> u32 {
        self.searcher
            .segment_readers()
            .iter()
            .filter_map(|seg| seg.inverted_index(field).ok())
            .map(|inv| inv.terms().num_terms())
            .max()
            .unwrap_or(0)
            .clamp(1, u32::MAX as usize) as u32
    }

    fn text_in_field(&self, n: &Needle, f: Field) -> Box<dyn TQuery> {
        let (s, scored) = (self.schema, self.scored);
        let field = s.text_field(f);
        let terms: Vec<Term> = n
            .tokens
            .iter()
            .map(|t| Term::from_field_text(field, t))
            .collect();
        let term_query = |t: &Term| -> Box<dyn TQuery> {
            Box::new(TermQuery::new(t.clone(), IndexRecordOption::WithFreqs))
        };
        match (terms.as_slice(), n.exact_end) {
            ([t], true) => term_query(t),
            ([t], false) if n.tokens[0].chars().count() <= SHORT_PREFIX_CHARS => {
                // One term of the short-prefix field holds exactly these records.
                let short: Box<dyn TQuery> = Box::new(TermQuery::new(
                    Term::from_field_text(s.prefix_field(f), &n.tokens[0]),
                    IndexRecordOption::Basic,
                ));
                if scored {
                    Box::new(BooleanQuery::new(vec![
                        (Occur::Should, term_query(t)),
                        (Occur::Should, Box::new(ConstScoreQuery::new(short, 0.1))),
                    ]))
                } else {
                    short
                }
            }
            ([t], false) => {
                let mut prefix = PhrasePrefixQuery::new(vec![t.clone()]);
                prefix.set_max_expansions(self.max_terms(field));
                if scored {
                    // The exact term ranks by BM25; other expansions add a constant.
                    Box::new(BooleanQuery::new(vec![
                        (Occur::Should, term_query(t)),
                        (
                            Occur::Should,
                            Box::new(ConstScoreQuery::new(Box::new(prefix), 0.1)),
                        ),
                    ]))
                } else {
                    Box::new(prefix)
                }
            }
            (_, true) => Box::new(PhraseQuery::new(terms)),
            (_, false) => {
                // A needle always has a token (the planner drops empty ones).
                let Some((last, exact)) = n.tokens.split_last() else {
                    return Box::new(EmptyQuery);
                };
                let exact = exact
                    .iter()
                    .map(|t| Term::from_field_text(field, t))
                    .collect();
                Box::new(SplitWordQuery::new(field, exact, last))
            }
        }
    }
}
