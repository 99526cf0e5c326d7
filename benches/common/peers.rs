//! The peers `benches/compare.rs` measures sealdex against, built from the
//! same extracted text (sealdex's [`Record`]s):
//!
//! - [`Fts5`]: SQLCipher + FTS5 (rusqlite with bundled SQLCipher), and
//!   [`fts5_sql`], the translation of a sealdex query into FTS5 `MATCH`
//!   plus SQL.
//! - [`PlainTantivy`]: tantivy on its plain `MmapDirectory` (no
//!   encryption) with sealdex's own schema, tokenizer and query mapping
//!   (`sealdex::inverted::{IndexSchema, compile}`), so that the difference
//!   to sealdex's inverted mode is the encrypted directory and the store.
//!
//! Only with the `peers` feature (`benches/common/mod.rs`).

// Each bench uses part of these helpers; the rest is not dead code.
#![allow(dead_code)]

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use sealdex::inverted::{IndexSchema, InvertedOptions, compile};
use sealdex::query::{Filter, Query, Term};
use sealdex::store::DocKey;
use sealdex::{Field, Flags, Record};
use tantivy::collector::{Collector, Count, SegmentCollector, TopDocs};
use tantivy::columnar::Column;
use tantivy::query::Query as TQuery;
use tantivy::{DocAddress, DocId, IndexReader, ReloadPolicy, Score, SegmentReader};

// ---------------------------------------------------------------------------
// Plaintext tantivy
// ---------------------------------------------------------------------------

/// Records per tantivy commit while loading: during an indexing run
/// sealdex's inverted index commits every 100,000 records or 64 MiB of
/// pending records (`inverted::engine::BULK_COMMIT_DOCS`), whichever comes
/// first; the peer commits on the count only.
pub const TANTIVY_COMMIT_DOCS: usize = 100_000;

/// tantivy on a plain `MmapDirectory`, with sealdex's schema
/// ([`IndexSchema`]: the same fields, the sealdex tokenizer) plus what an
/// app shows of a hit, stored in tantivy's document store
/// ([`PageFields`]), and sealdex's query mapping ([`compile`]).
pub struct PlainTantivy {
    schema: IndexSchema,
    page: PageFields,
    reader: IndexReader,
}

/// What an app shows of a hit on a results page.
#[derive(Clone, Debug, PartialEq)]
pub struct PageRow {
    /// The message id the source gave.
    pub id: String,
    /// The date, seconds since the epoch.
    pub date: Option<i64>,
    /// The sender.
    pub sender: String,
    /// The subject.
    pub subject: String,
}

/// The peer's stored fields, added after sealdex's own (whose field
/// numbers they keep): an app built on tantivy reads a results page from
/// its document store.
#[derive(Clone, Copy)]
struct PageFields {
    id: tantivy::schema::Field,
    date: tantivy::schema::Field,
    sender: tantivy::schema::Field,
    subject: tantivy::schema::Field,
}

impl PageFields {
    /// sealdex's schema, then the page fields, stored and not indexed.
    fn schema(sealdex: &IndexSchema) -> (tantivy::schema::Schema, PageFields) {
        use tantivy::schema::{STORED, Schema};
        let mut b = Schema::builder();
        for (_, entry) in sealdex.schema().fields() {
            b.add_field(entry.clone());
        }
        let page = PageFields {
            id: b.add_text_field("page.id", STORED),
            date: b.add_i64_field("page.date", STORED),
            sender: b.add_text_field("page.sender", STORED),
            subject: b.add_text_field("page.subject", STORED),
        };
        (b.build(), page)
    }

    fn read(&self, doc: &tantivy::TantivyDocument) -> PageRow {
        use tantivy::schema::Value;
        let text = |f| {
            doc.get_first(f)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        PageRow {
            id: text(self.id),
            date: doc.get_first(self.date).and_then(|v| v.as_i64()),
            sender: text(self.sender),
            subject: text(self.subject),
        }
    }
}

/// The document key the peer gives record `i`: any unique 32 bytes will
/// do (sealdex's are keyed MACs of the id, which the peer has no key for).
fn peer_key(i: usize) -> DocKey {
    let mut k = [0u8; 33];
    k[0] = b'D';
    k[25..].copy_from_slice(&(i as u64).to_be_bytes());
    DocKey::from_bytes(&k).expect("a 33-byte document key")
}

impl PlainTantivy {
    /// Creates the index in `dir` and loads `records` with sealdex's writer
    /// settings (threads and memory of `InvertedOptions::default()`),
    /// committing every [`TANTIVY_COMMIT_DOCS`], then waits for the merges
    /// to finish.
    pub fn build(dir: &Path, records: &[Record]) -> tantivy::Result<()> {
        let schema = IndexSchema::new();
        let (full, page) = PageFields::schema(&schema);
        let index = tantivy::Index::create_in_dir(dir, full)?;
        schema.register_tokenizer(&index);
        let opts = InvertedOptions::default();
        let mut writer: tantivy::IndexWriter =
            index.writer_with_num_threads(opts.writer_threads, opts.writer_bytes)?;
        for (i, r) in records.iter().enumerate() {
            let mut doc = schema.document(&peer_key(i), i as u64, r);
            doc.add_text(page.id, &r.id);
            if let Some(date) = r.timestamp {
                doc.add_i64(page.date, date);
            }
            doc.add_text(page.sender, &r.from);
            doc.add_text(page.subject, &r.subject);
            writer.add_document(doc)?;
            if (i + 1) % TANTIVY_COMMIT_DOCS == 0 {
                writer.commit()?;
            }
        }
        writer.commit()?;
        writer.wait_merging_threads()?;
        Ok(())
    }

    /// Opens the index in `dir`.
    pub fn open(dir: &Path) -> tantivy::Result<PlainTantivy> {
        let schema = IndexSchema::new();
        let (_, page) = PageFields::schema(&schema);
        let index = tantivy::Index::open_in_dir(dir)?;
        schema.register_tokenizer(&index);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(PlainTantivy {
            schema,
            page,
            reader,
        })
    }

    /// sealdex's mapping of a query, unscored (newest-first order).
    pub fn compile(&self, q: &Query) -> Box<dyn TQuery> {
        compile(q, &self.schema, &self.reader.searcher(), false)
    }

    /// Every hit with its key and date, as sealdex's inverted mode
    /// collects them (the key's four fast columns and the date).
    pub fn all_hits(&self, q: &dyn TQuery) -> tantivy::Result<Vec<Hit>> {
        self.reader.searcher().search(q, &AllHits)
    }

    /// The number of hits and the ten newest by the `date` fast field.
    pub fn count_newest_ten(&self, q: &dyn TQuery) -> tantivy::Result<(usize, TopTen)> {
        let newest =
            TopDocs::with_limit(10).order_by_fast_field::<i64>("date", tantivy::Order::Desc);
        self.reader.searcher().search(q, &(Count, newest))
    }
}

impl PlainTantivy {
    /// An app's first page: the number of hits and the ten newest by the
    /// `date` fast field, each read from the document store.
    pub fn first_page(&self, q: &dyn TQuery) -> tantivy::Result<(usize, Vec<PageRow>)> {
        let searcher = self.reader.searcher();
        let newest =
            TopDocs::with_limit(10).order_by_fast_field::<i64>("date", tantivy::Order::Desc);
        let (count, ten) = searcher.search(q, &(Count, newest))?;
        let mut page = Vec::with_capacity(ten.len());
        for (_, addr) in ten {
            let doc: tantivy::TantivyDocument = searcher.doc(addr)?;
            page.push(self.page.read(&doc));
        }
        Ok((count, page))
    }
}

/// The ten newest hits: date and address.
pub type TopTen = Vec<(Option<i64>, DocAddress)>;

/// A hit: the key's four words and the date.
pub type Hit = ([u64; 4], Option<i64>);

/// Collects every hit's key and date.
struct AllHits;

struct AllHitsSegment {
    keys: [Column<u64>; 4],
    date: Column<i64>,
    out: Vec<Hit>,
}

impl Collector for AllHits {
    type Fruit = Vec<Hit>;
    type Child = AllHitsSegment;

    fn for_segment(&self, _ord: u32, seg: &SegmentReader) -> tantivy::Result<AllHitsSegment> {
        let ff = seg.fast_fields();
        Ok(AllHitsSegment {
            keys: [ff.u64("k0")?, ff.u64("k1")?, ff.u64("k2")?, ff.u64("k3")?],
            date: ff.i64("date")?,
            out: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Vec<Hit>>) -> tantivy::Result<Vec<Hit>> {
        Ok(fruits.into_iter().flatten().collect())
    }
}

impl SegmentCollector for AllHitsSegment {
    type Fruit = Vec<Hit>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let [a, b, c, d] = &self.keys;
        let key = [a, b, c, d].map(|col| col.first(doc).unwrap_or(0));
        self.out.push((key, self.date.first(doc)));
    }

    fn harvest(self) -> Vec<Hit> {
        self.out
    }
}

// ---------------------------------------------------------------------------
// SQLCipher + FTS5
// ---------------------------------------------------------------------------

/// The page cache of the `sqlcipher-cache` engine, in KiB:
/// `COMPARE_SQLITE_CACHE_KIB`, default 256 MiB, more than either corpus's
/// database. Decrypted pages live there, so a cache that holds the whole
/// database is the counterpart of sealdex's decrypted cache (the plain
/// `sqlcipher` engine keeps SQLCipher's default of 2,000 KiB).
pub fn sqlite_cache_kib() -> i64 {
    std::env::var("COMPARE_SQLITE_CACHE_KIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256 << 10)
}

/// The database file inside an engine's directory.
const DB_FILE: &str = "fts.db";

/// Records per transaction while loading: sealdex's default batch
/// (`IndexOptions::batch_messages`), so both make a durable commit as often.
pub const FTS5_BATCH: usize = 512;

/// The schema. `docs` holds the text and the metadata (stamp and flags
/// first, so that reading them never touches a row's overflow pages);
/// `labels` the folders and labels, one row each; `fts` is an
/// external-content FTS5 table over `docs`, so the text is stored once.
/// The columns are named `sender`/`recipients`/`filenames` because `from`
/// and `to` are SQL keywords.
const SCHEMA: &str = "
CREATE TABLE docs(
    id INTEGER PRIMARY KEY,
    msgid TEXT NOT NULL,
    stamp INTEGER,
    flags INTEGER NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    sender TEXT NOT NULL,
    recipients TEXT NOT NULL,
    filenames TEXT NOT NULL,
    location TEXT NOT NULL,
    kind TEXT NOT NULL
);
CREATE INDEX docs_stamp ON docs(stamp);
CREATE TABLE labels(
    name TEXT NOT NULL COLLATE NOCASE,
    doc INTEGER NOT NULL,
    PRIMARY KEY(name, doc)
) WITHOUT ROWID;
CREATE VIRTUAL TABLE fts USING fts5(
    subject, body, sender, recipients, filenames, location,
    content='docs', content_rowid='id',
    tokenize='unicode61 remove_diacritics 2'
);
";

/// The FTS5 column of a sealdex field.
fn column(field: Field) -> &'static str {
    match field {
        Field::Subject => "subject",
        Field::Body => "body",
        Field::From => "sender",
        Field::To => "recipients",
        Field::Filename => "filenames",
        Field::Location => "location",
    }
}

/// An SQLCipher database with an FTS5 index, keyed with a raw 256-bit key
/// (`PRAGMA key = "x'…'"`: no PBKDF2, as sealdex's bench uses an app key and
/// no Argon2id). Journal: WAL with `synchronous = FULL`, so every commit is
/// durable as sealdex's flushed batches are. Everything else is SQLCipher's
/// default (4 KiB pages, HMAC-SHA512 per page, a 2 MB page cache) unless
/// a page cache size is given ([`sqlite_cache_kib`]).
pub struct Fts5 {
    conn: Connection,
}

impl Fts5 {
    /// Opens (or creates) the database in `dir` under `key`, with a page
    /// cache of `cache_kib` KiB or SQLCipher's default.
    pub fn open(dir: &Path, key: &[u8; 32], cache_kib: Option<i64>) -> rusqlite::Result<Fts5> {
        let conn = Connection::open(dir.join(DB_FILE))?;
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        conn.execute_batch(&format!("PRAGMA key = \"x'{hex}'\";"))?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        debug_assert_eq!(mode, "wal");
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.set_prepared_statement_cache_capacity(512);
        if let Some(kib) = cache_kib {
            conn.pragma_update(None, "cache_size", -kib)?;
        }
        Ok(Fts5 { conn })
    }

    /// Creates the schema in a fresh database and loads `records`, one
    /// transaction per [`FTS5_BATCH`], then checkpoints the WAL into the
    /// database file.
    pub fn build(
        dir: &Path,
        key: &[u8; 32],
        cache_kib: Option<i64>,
        records: &[Record],
    ) -> rusqlite::Result<Fts5> {
        let mut db = Fts5::open(dir, key, cache_kib)?;
        db.conn.execute_batch(SCHEMA)?;
        for (n, chunk) in records.chunks(FTS5_BATCH).enumerate() {
            let tx = db.conn.transaction()?;
            {
                let mut doc = tx.prepare_cached(
                    "INSERT INTO docs(id, msgid, stamp, flags, subject, body, sender, recipients, filenames, location, kind)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )?;
                let mut fts = tx.prepare_cached(
                    "INSERT INTO fts(rowid, subject, body, sender, recipients, filenames, location)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?;
                let mut label =
                    tx.prepare_cached("INSERT OR IGNORE INTO labels(name, doc) VALUES (?1, ?2)")?;
                for (i, r) in chunk.iter().enumerate() {
                    let id = (n * FTS5_BATCH + i + 1) as i64;
                    doc.execute(params![
                        id,
                        r.id,
                        r.timestamp,
                        r.flags.bits(),
                        r.subject,
                        r.body,
                        r.from,
                        r.to,
                        r.attachments,
                        r.location,
                        r.kind.name()
                    ])?;
                    fts.execute(params![
                        id,
                        r.subject,
                        r.body,
                        r.from,
                        r.to,
                        r.attachments,
                        r.location
                    ])?;
                    for f in r.places() {
                        label.execute(params![f, id])?;
                    }
                }
            }
            tx.commit()?;
        }
        db.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(db)
    }

    /// All hits of a translated query: their ids.
    pub fn all_hits(&self, sql: &Fts5Sql) -> rusqlite::Result<Vec<i64>> {
        let mut st = self.conn.prepare_cached(&sql.all)?;
        let rows = st.query_map([], |r| r.get::<_, i64>(0))?;
        rows.collect()
    }

    /// The number of hits and the ten newest, in one statement: the count
    /// is a window over every hit (`count(*) OVER ()`), computed in the
    /// same pass that feeds the sort.
    pub fn count_newest_ten(&self, sql: &Fts5Sql) -> rusqlite::Result<(usize, NewestTen)> {
        let mut st = self.conn.prepare_cached(&sql.count_newest_ten)?;
        let mut count = 0;
        let mut ten = Vec::with_capacity(10);
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            count = r.get::<_, i64>(2)? as usize;
            ten.push((r.get(0)?, r.get(1)?));
        }
        Ok((count, ten))
    }

    /// An app's first page: the number of hits and the ten newest with
    /// their message id, date, sender and subject, in one statement.
    pub fn first_page(&self, sql: &Fts5Sql) -> rusqlite::Result<(usize, Vec<PageRow>)> {
        let mut st = self.conn.prepare_cached(&sql.first_page)?;
        let mut count = 0;
        let mut page = Vec::with_capacity(10);
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            count = r.get::<_, i64>(4)? as usize;
            page.push(PageRow {
                id: r.get(0)?,
                date: r.get(1)?,
                sender: r.get(2)?,
                subject: r.get(3)?,
            });
        }
        Ok((count, page))
    }

    /// Checks the key and the schema by reading one row: what a first
    /// query after opening has to pay anyway.
    pub fn check(&self) -> rusqlite::Result<Option<i64>> {
        self.conn
            .query_row("SELECT id FROM docs LIMIT 1", [], |r| r.get(0))
            .optional()
    }
}

// ---------------------------------------------------------------------------
// Query translation
// ---------------------------------------------------------------------------

/// The ten newest hits: (id, stamp).
pub type NewestTen = Vec<(i64, Option<i64>)>;

/// A sealdex query as SQL over the [`Fts5`] schema: all hits, and the count
/// with the ten newest.
#[derive(Clone, Debug)]
pub struct Fts5Sql {
    /// `SELECT d.id …` of every hit.
    pub all: String,
    /// `SELECT d.id, d.stamp, count(*) OVER () … ORDER BY d.stamp DESC,
    /// d.id DESC LIMIT 10`.
    pub count_newest_ten: String,
    /// `SELECT d.msgid, d.stamp, d.sender, d.subject, count(*) OVER () …
    /// ORDER BY d.stamp DESC, d.id DESC LIMIT 10`: an app's first page.
    pub first_page: String,
    /// The `MATCH` expression, if any part of the query is text.
    pub fts_match: Option<String>,
    /// The SQL conditions on `docs d`, joined with `AND`.
    pub conditions: Vec<String>,
}

/// Translates a parsed sealdex query into FTS5 and SQL, as closely as FTS5
/// allows.
///
/// - A word is an FTS5 prefix string (`"word"*`): FTS5 tokenizes the
///   string itself, so a word its tokenizer splits (`o'reilly`) becomes a
///   phrase whose last token is a prefix, as in sealdex. A phrase is an
///   FTS5 phrase (`"a b"`). A field term is a column filter
///   (`subject : "x"*`). AND, OR and exclusion map to FTS5's `AND`, `OR`
///   and binary `NOT` (`(a AND b) NOT (c OR d)`).
/// - Filters are SQL on `docs d`: `in:`/`label:` a `labels` lookup,
///   `after:`/`before:` a range on `stamp`, `is:`/`has:` a test of
///   `flags`.
/// - What FTS5's `MATCH` cannot say, SQL says: a conjunction with no
///   positive text (`-the`, `in:chat -pizza`) excludes
///   `d.id NOT IN (SELECT rowid FROM fts WHERE fts MATCH …)`, and an `OR`
///   or `NOT` mixing text and filters (`-in:spam-1`, `-(a OR in:x)`) puts
///   each text part in such a sub-select.
///
/// Where the result is not exactly sealdex's (hit counts may differ; the
/// runner reports per query whether they agree):
///
/// - **Normaliser.** unicode61 with `remove_diacritics 2` lowercases and
///   strips diacritics (`café` = `cafe`) but applies no NFKD compatibility
///   mapping (`ﬁ`, full-width letters) and no full case folding: `Straße`
///   does not match `strasse` (sealdex folds both to `strasse`).
/// - **CJK.** unicode61 keeps a run of ideographs as one token, sealdex
///   makes every ideograph a token: `免费` is a prefix of whole runs in
///   FTS5 (it finds `免费下载` but not `获得免费`), a phrase of two tokens in
///   sealdex.
/// - **Folder names** compare with SQLite's `NOCASE` (ASCII only); sealdex
///   folds Unicode case.
/// - **Phrases across fields**: both match a phrase within one field, so
///   they agree; but sealdex's token boundaries between lines of `to`
///   (one recipient per line) are plain token boundaries in both.
///
/// Every query of the batteries is expressible in this form; none is
/// dropped.
pub fn fts5_sql(query: &Query) -> Fts5Sql {
    let (fts_match, conditions) = match query {
        Query::And(parts) => conjunction(parts),
        other => conjunction(std::slice::from_ref(other)),
    };
    let (from, mut wheres) = match &fts_match {
        Some(m) => (
            // CROSS JOIN: SQLite visits fts first, then docs by rowid.
            "fts CROSS JOIN docs d ON d.id = fts.rowid",
            vec![format!("fts MATCH {}", sql_string(m))],
        ),
        None => ("docs d", Vec::new()),
    };
    wheres.extend(conditions.iter().cloned());
    let clause = if wheres.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", wheres.join(" AND "))
    };
    Fts5Sql {
        all: format!("SELECT d.id FROM {from}{clause}"),
        count_newest_ten: format!(
            "SELECT d.id, d.stamp, count(*) OVER () FROM {from}{clause} \
             ORDER BY d.stamp DESC, d.id DESC LIMIT 10"
        ),
        first_page: format!(
            "SELECT d.msgid, d.stamp, d.sender, d.subject, count(*) OVER () FROM {from}{clause} \
             ORDER BY d.stamp DESC, d.id DESC LIMIT 10"
        ),
        fts_match,
        conditions,
    }
}

/// The top-level conjunction: positive pure-text parts and excluded
/// pure-text parts make one `MATCH`; the rest become SQL conditions.
fn conjunction(parts: &[Query]) -> (Option<String>, Vec<String>) {
    let mut positive = Vec::new();
    let mut negative = Vec::new();
    let mut conditions = Vec::new();
    for p in parts {
        match p {
            Query::Not(inner) if is_text(inner) => negative.push(fts_expr(inner)),
            _ if is_text(p) => positive.push(fts_expr(p)),
            _ => conditions.push(sql_condition(p)),
        }
    }
    if positive.is_empty() {
        for n in negative {
            conditions.push(format!("NOT {}", in_fts(&n)));
        }
        return (None, conditions);
    }
    let mut m = positive.join(" AND ");
    if !negative.is_empty() {
        m = format!("({m}) NOT ({})", negative.join(" OR "));
    }
    (Some(m), conditions)
}

/// Whether FTS5's `MATCH` can express `q` by itself: text terms combined
/// with AND, OR, and NOT after at least one positive term.
fn is_text(q: &Query) -> bool {
    match q {
        Query::Term(_) => true,
        Query::Filter(_) | Query::Not(_) => false,
        Query::Or(parts) => parts.iter().all(is_text),
        Query::And(parts) => {
            parts.iter().any(is_text)
                && parts.iter().all(|p| match p {
                    Query::Not(inner) => is_text(inner),
                    other => is_text(other),
                })
        }
    }
}

/// The `MATCH` expression of a query for which [`is_text`] holds.
fn fts_expr(q: &Query) -> String {
    match q {
        Query::Term(t) => term(t),
        Query::Or(parts) => format!(
            "({})",
            parts.iter().map(fts_expr).collect::<Vec<_>>().join(" OR ")
        ),
        Query::And(parts) => {
            let pos: Vec<String> = parts
                .iter()
                .filter(|p| !matches!(p, Query::Not(_)))
                .map(fts_expr)
                .collect();
            let neg: Vec<String> = parts
                .iter()
                .filter_map(|p| match p {
                    Query::Not(inner) => Some(fts_expr(inner)),
                    _ => None,
                })
                .collect();
            if neg.is_empty() {
                format!("({})", pos.join(" AND "))
            } else {
                format!("(({}) NOT ({}))", pos.join(" AND "), neg.join(" OR "))
            }
        }
        Query::Not(_) | Query::Filter(_) => unreachable!("not pure text: {q}"),
    }
}

/// An FTS5 string: a prefix for a word, exact for a phrase, in a column
/// for a field term.
fn term(t: &Term) -> String {
    let quoted = format!("\"{}\"", t.text.replace('"', "\"\""));
    let s = if t.phrase {
        quoted
    } else {
        format!("{quoted}*")
    };
    match t.field {
        Some(f) => format!("{} : {s}", column(f)),
        None => s,
    }
}

/// A SQL condition on `docs d` for any query.
fn sql_condition(q: &Query) -> String {
    if is_text(q) {
        return in_fts(&fts_expr(q));
    }
    match q {
        Query::Filter(f) => filter(f),
        Query::Not(inner) => format!("NOT ({})", sql_condition(inner)),
        Query::And(parts) => format!(
            "({})",
            parts
                .iter()
                .map(sql_condition)
                .collect::<Vec<_>>()
                .join(" AND ")
        ),
        Query::Or(parts) => format!(
            "({})",
            parts
                .iter()
                .map(sql_condition)
                .collect::<Vec<_>>()
                .join(" OR ")
        ),
        Query::Term(_) => unreachable!("a term is text"),
    }
}

/// `d.id IN (SELECT rowid FROM fts WHERE fts MATCH …)`.
fn in_fts(m: &str) -> String {
    format!(
        "d.id IN (SELECT rowid FROM fts WHERE fts MATCH {})",
        sql_string(m)
    )
}

fn filter(f: &Filter) -> String {
    match f {
        Filter::In(name) | Filter::Label(name) => format!(
            "d.id IN (SELECT doc FROM labels WHERE name = {})",
            sql_string(name)
        ),
        Filter::After(t) => format!("d.stamp >= {t}"),
        Filter::Before(t) => format!("d.stamp < {t}"),
        Filter::HasAttachment => format!("(d.flags & {}) != 0", Flags::HAS_ATTACHMENT.bits()),
        Filter::IsUnread => format!("(d.flags & {}) != 0", Flags::UNREAD.bits()),
        Filter::IsRead => format!("(d.flags & {}) = 0", Flags::UNREAD.bits()),
        Filter::IsFlagged => format!("(d.flags & {}) != 0", Flags::FLAGGED.bits()),
        Filter::Kind(kind) => format!("d.kind = {}", sql_string(kind.name())),
    }
}

/// A SQL string literal.
fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
