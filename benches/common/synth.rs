//! A generator of synthetic but honest mail: any number of raw RFC 822
//! messages, made deterministically from a seed, whose statistics are
//! learned from the real corpora in `$SEALDEX_CORPORA`. Used by
//! `benches/scale.rs` for the 10k → 1M scaling curve, by
//! `examples/synth_mbox.rs` to look at the output, and by `tests/synth.rs`.
//!
//! Two steps:
//!
//! 1. [`Model::learn`] reads the corpora once (≈ 1–3 s) into a compact model
//!    (≈ 20–40 MB in memory; [`Model::save`] / [`Model::load`] keep it in a
//!    file so that many processes need not learn it again).
//! 2. [`Synth`] is a [`Source`] of `count` messages that makes message `i`
//!    on the fly from `(seed, i)` alone, so listing and fetching need no
//!    disk and any message can be made without the others: 1M messages
//!    cost CPU, not gigabytes. Decrypt them with sealdex's
//!    [`sealdex::decrypt::PassThrough`].
//!
//! # What is drawn from which corpus
//!
//! **SpamAssassin** (`spamassassin/<folder>/<file>`, ≈ 6,000 raw messages,
//! parsed with sealdex's own MIME parser and HTML cleaner, and with
//! mail-parser for the structure). Every synthetic message copies the shape
//! of one *template*, a real message picked uniformly at random; from each
//! real message the model keeps:
//!
//! - its **folder** (the corpus directory: `easy-ham-1`, `spam-2`, ...), so
//!   folder shares and folder filters behave as on the corpus;
//! - its **MIME shape**: text only, HTML only, or both (multipart/
//!   alternative), so the share of HTML and multipart mail is the corpus's;
//! - its **attachments**: how many, each file-name extension and size
//!   (sizes capped at [`MAX_ATTACHMENT_BYTES`]);
//! - its **body length** in words (capped at [`MAX_BODY_WORDS`]) and its
//!   **subject length** in words, and whether the subject starts with
//!   `Re:` or `Fwd:`;
//! - its **number of recipients** (To + Cc) and whether it has a Cc;
//! - its **number of `Received:` headers** (they cost parse time);
//! - the **hour of day and time-zone offset** of its `Date:`;
//! - whether its text is **mostly non-ASCII** (≥ 20 % of its letters).
//!
//! The **vocabulary and its frequencies**: the body text of every message
//! (after HTML → text, as sealdex indexes it) is kept as one stream of
//! whitespace-separated words, in their original case and punctuation,
//! grouped by folder; subjects likewise. A synthetic body is a sequence of
//! runs of consecutive words (run lengths geometric, mean
//! [`MEAN_RUN_WORDS`]) copied from random positions of the stream *of the
//! template's folder*. Starting positions are uniform over the stream, so
//! every word appears with its corpus frequency (the corpus's own Zipf
//! curve, prefixes included), real phrases (`"mailing list"`,
//! `"click here"`) and ham/spam topics stay together, and a word's
//! neighbours are real. Mostly-non-ASCII messages are left out of the
//! stream (their text comes from the multilingual corpus instead), and so
//! are words with U+FFFD (bytes mail-parser could not decode).
//!
//! **Names and addresses**: first and last names from the display names of
//! the corpus's `From:` headers (only names of two or three words of
//! letters), sender domains from their addresses, each with its corpus
//! frequency; the share of `From:` headers with a display name; and the
//! shares of local-part styles (`first.last`, `first`, `flast`, other).
//!
//! **Vocabulary growth**: the stream alone would cap the vocabulary at the
//! corpus's (~10⁵ normalised terms), while a real mailbox keeps meeting new
//! words (names, numbers, codes) as it grows, which matters for an inverted
//! index's term dictionary. [`Model::learn`] fits Heaps' law `V = K·nᵝ` to
//! the corpus (distinct normalised tokens against tokens, in corpus order)
//! and, once a synthetic mailbox has passed the corpus's size, each word is
//! replaced by a never-seen token with the probability `dV/dn` that the
//! fit predicts at that point (so the vocabulary keeps growing as
//! `K·nᵝ`). Those new tokens are invented (see below).
//!
//! **Multilingual** (`multilingual/<language>-<topic>.yml`, ChatterBot
//! conversations in ≈ 28 languages): the sentences of every language but
//! English. A template that was mostly non-ASCII gets its subject and body
//! from these sentences instead of the stream, in one language chosen with
//! probability proportional to its number of sentences, so the share of
//! non-ASCII mail is the SpamAssassin share. SpamAssassin's own occasional
//! accented words (`café`) come through the stream.
//!
//! **ChitChat** (`chitchat/dataset.json`, 258k chat messages): the
//! conversational text of personal mail, which SpamAssassin (mailing lists
//! and spam) hardly has. A share [`PERSONAL_SHARE`] of the messages whose
//! template is ham are personal notes: their body is consecutive messages of
//! one ChitChat conversation, one per line, up to the template's length,
//! and their subject `Re:` plus the first words.
//!
//! # What is invented
//!
//! - **Dates**: message `i` of `n` is dated at `(i + ½)/n` of the way from
//!   [`FIRST_DAY`] to [`LAST_DAY`] (13 years), ± up to 2 days, at the
//!   template's hour and time zone. So listing order is roughly date order,
//!   as in a mailbox that was filled as mail arrived.
//! - **Contacts**: a population of `clamp(count / 25, 100, 40000)` people,
//!   person `j` made from `(seed, j)` out of the learned name and domain
//!   pools; senders and extra recipients are drawn from it by a Zipf law
//!   (exponent 1), and every message is addressed to one mailbox owner.
//! - **Never-seen tokens** (vocabulary growth above): three quarters are
//!   pronounceable pseudo-words of 3+ syllables (`kazomupe`), a quarter
//!   codes like `A7F3K29Q`; each encodes `(i, k)` and is unique.
//! - **Message-ID** (`<hex.i@sender-domain>`), **Received** lines (count
//!   from the template, content made up), **attachment names**
//!   (`word_word.ext`, the extension from the template) and **contents**
//!   (pseudo-random bytes, base64).
//! - **Layout**: text wrapped at 72 columns, a paragraph break after a
//!   word ending a sentence with probability 1/6; HTML is tidy (`<p>`,
//!   sometimes `<b>` and `<a>`), so html2text costs less per message than
//!   on SpamAssassin's messy spam HTML. Line ends are LF, as in the corpus
//!   files. Charsets: everything is UTF-8; mostly-ASCII text with some
//!   non-ASCII words is quoted-printable, non-ASCII text base64, headers
//!   RFC 2047 `=?UTF-8?B?…?=`.
//! - **Flags**: unread with probability 0.5 among the newest 1 % and 0.02
//!   otherwise; flagged with probability 0.01. Labels: none.
//! - [`PERSONAL_SHARE`] and [`MEAN_RUN_WORDS`].
//!
//! Determinism: learning reads files in sorted order and numbers words by
//! first occurrence, so the same corpora give the same model; message `i`
//! depends only on the model, the seed and `(count, i)`.

// Each bench or test uses part of this file; the rest is not dead code.
#![allow(dead_code)]

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sealdex::decrypt::PassThrough;
use sealdex::{
    Body, Changes, Cursor, Decryptor, FetchError, Flags, MessageRef, Page, RawMessage, Source,
    SourceError, SyncToken, clean,
};
use serde::{Deserialize, Serialize};

/// Longest body kept per template, in words (a few spam messages are
/// hundreds of kilobytes of text).
pub const MAX_BODY_WORDS: u32 = 5_000;
/// Largest attachment made, in bytes before base64.
pub const MAX_ATTACHMENT_BYTES: u32 = 256 << 10;
/// Mean length of a run of words copied from the stream.
pub const MEAN_RUN_WORDS: f64 = 12.0;
/// Share of ham-templated messages that are personal notes from ChitChat.
pub const PERSONAL_SHARE: f64 = 0.10;
/// First day of the date range (2013-01-01 UTC), seconds since the epoch.
pub const FIRST_DAY: i64 = 1_356_998_400;
/// Last day of the date range (2025-12-31 UTC).
pub const LAST_DAY: i64 = 1_767_139_200;

// ---------------------------------------------------------------------------
// Randomness
// ---------------------------------------------------------------------------

/// SplitMix64: tiny, fast, and good enough for choosing words; the
/// generator needs determinism, not cryptographic strength.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for stream `b` of seed `a`.
    pub fn new(a: u64, b: u64) -> Rng {
        let mut r = Rng(a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        r.next_u64();
        r
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// A geometric length ≥ 1 with the given mean.
    pub fn geometric(&mut self, mean: f64) -> u32 {
        let p = 1.0 / mean.max(1.0);
        let u = self.unit().max(f64::MIN_POSITIVE);
        1 + (u.ln() / (1.0 - p).ln()).floor().min(1e6) as u32
    }

    /// An element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

// ---------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------

/// MIME shape of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Shape {
    /// One text/plain body.
    Text,
    /// One text/html body, no text alternative.
    Html,
    /// multipart/alternative with text and HTML.
    Alternative,
}

/// `Re:` / `Fwd:` at the start of a subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SubjectPrefix {
    /// None.
    None,
    /// `Re:`.
    Re,
    /// `Fwd:` or `Fw:`.
    Fwd,
}

/// What is kept of one real message.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Template {
    folder: u16,
    shape: Shape,
    words: u32,
    subject_words: u8,
    prefix: SubjectPrefix,
    recipients: u8,
    cc: bool,
    received: u8,
    hour: u8,
    tz_minutes: i16,
    non_ascii: bool,
    /// (extension index, size in bytes)
    attachments: Vec<(u16, u32)>,
}

/// A folder: its name and its ranges of the word streams.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Folder {
    name: String,
    body: (u32, u32),
    subject: (u32, u32),
    ham: bool,
}

/// The multilingual sentences of one language.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Language {
    name: String,
    sentences: Vec<String>,
}

/// Figures measured while learning, for documentation and the example.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LearnStats {
    /// SpamAssassin messages read (after sampling).
    pub messages: usize,
    /// Messages the parser refused (left out).
    pub unparsed: usize,
    /// Templates by shape: text, HTML only, alternative.
    pub shapes: [usize; 3],
    /// Templates with at least one attachment.
    pub with_attachments: usize,
    /// Templates that are mostly non-ASCII.
    pub non_ascii: usize,
    /// Templates whose body was longer than [`MAX_BODY_WORDS`].
    pub capped_bodies: usize,
    /// Words in the body stream.
    pub stream_words: usize,
    /// Distinct surface words (stream vocabulary).
    pub vocabulary: usize,
    /// Normalised tokens in the corpus and distinct ones (for Heaps' law).
    pub normalised_tokens: u64,
    /// Distinct normalised tokens.
    pub normalised_vocabulary: u64,
    /// Heaps' law fit `V = K nᵝ`.
    pub heaps_k: f64,
    /// Heaps' exponent.
    pub heaps_beta: f64,
    /// Mean body words per template.
    pub mean_words: f64,
    /// Multilingual sentences kept, and languages.
    pub sentences: usize,
    /// Languages.
    pub languages: usize,
    /// ChitChat messages kept.
    pub chat_messages: usize,
    /// Share of From headers with a display name.
    pub display_name_share: f64,
}

/// The learned model. See the [module documentation](self).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Model {
    vocab: Vec<String>,
    body: Vec<u32>,
    subject: Vec<u32>,
    folders: Vec<Folder>,
    templates: Vec<Template>,
    ham_templates: Vec<u32>,
    /// Pools with repetitions: drawing uniformly gives corpus frequencies.
    first_names: Vec<u32>,
    last_names: Vec<u32>,
    domains: Vec<u32>,
    names: Vec<String>,
    domain_names: Vec<String>,
    /// Cumulative shares of local-part styles: first.last, first, flast, other.
    local_styles: [f64; 4],
    display_name_share: f64,
    extensions: Vec<String>,
    languages: Vec<Language>,
    /// Cumulative sentence counts of `languages`.
    language_cdf: Vec<u64>,
    /// ChitChat words, [`NEWLINE`] between messages.
    chat: Vec<u32>,
    /// Start of each ChitChat conversation in `chat`.
    chat_starts: Vec<u32>,
    /// Normalised tokens per body word, and per template on average.
    tokens_per_word: f64,
    /// Corpus size in normalised tokens.
    corpus_tokens: f64,
    heaps_k: f64,
    heaps_beta: f64,
    /// What learning measured.
    pub stats: LearnStats,
}

/// Word id of a line break in the ChitChat stream.
const NEWLINE: u32 = u32::MAX;

/// How to learn.
#[derive(Clone, Copy, Debug)]
pub struct LearnOptions {
    /// Read only every n-th SpamAssassin message (1: all), for fast tests.
    pub sample_every: usize,
    /// Read at most this many ChitChat conversations.
    pub chat_conversations: usize,
}

impl Default for LearnOptions {
    fn default() -> Self {
        LearnOptions {
            sample_every: 1,
            chat_conversations: usize::MAX,
        }
    }
}

/// Interns words.
#[derive(Default)]
struct Interner {
    ids: HashMap<String, u32>,
    words: Vec<String>,
}

impl Interner {
    fn id(&mut self, w: &str) -> u32 {
        if let Some(&id) = self.ids.get(w) {
            return id;
        }
        let id = self.words.len() as u32;
        self.words.push(w.to_string());
        self.ids.insert(w.to_string(), id);
        id
    }
}

/// Whether at least a fifth of the letters of `s` are non-ASCII.
fn mostly_non_ascii(s: &str) -> bool {
    let (mut all, mut non) = (0usize, 0usize);
    for c in s.chars().filter(|c| c.is_alphabetic()) {
        all += 1;
        if !c.is_ascii() {
            non += 1;
        }
    }
    all > 0 && non * 5 >= all
}

/// `Re:`/`Fwd:` prefixes stripped (repeatedly), and which came first.
fn strip_prefix(subject: &str) -> (SubjectPrefix, &str) {
    let mut s = subject.trim_start();
    let mut first = SubjectPrefix::None;
    loop {
        let lower = s.get(..4).map(str::to_ascii_lowercase).unwrap_or_default();
        let (p, n) = if lower.starts_with("re:") {
            (SubjectPrefix::Re, 3)
        } else if lower.starts_with("fwd:") {
            (SubjectPrefix::Fwd, 4)
        } else if lower.starts_with("fw:") {
            (SubjectPrefix::Fwd, 3)
        } else {
            break;
        };
        if first == SubjectPrefix::None {
            first = p;
        }
        s = s[n..].trim_start();
    }
    (first, s)
}

/// `(display name, address)` of the first line of a `from` field as sealdex
/// formats it (`Name <addr>` or `addr`).
fn split_address(from: &str) -> (Option<&str>, &str) {
    let line = from.lines().next().unwrap_or_default().trim();
    match (line.rfind('<'), line.rfind('>')) {
        (Some(a), Some(b)) if a < b => {
            let name = line[..a].trim().trim_matches('"').trim();
            ((!name.is_empty()).then_some(name), &line[a + 1..b])
        }
        _ => (None, line),
    }
}

/// Name words of a display name usable as first and last name.
fn name_parts(name: &str) -> Option<(&str, &str)> {
    let parts: Vec<&str> = name.split_whitespace().collect();
    if !(2..=3).contains(&parts.len()) {
        return None;
    }
    let ok = |w: &str| {
        w.chars().count() >= 2
            && w.chars().next().is_some_and(char::is_uppercase)
            && w.chars()
                .all(|c| c.is_alphabetic() || c == '-' || c == '\'')
    };
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    (ok(first) && ok(last)).then_some((first, last))
}

/// Local-part style: 0 first.last, 1 first, 2 flast, 3 other.
fn local_style(local: &str, first: &str, last: &str) -> usize {
    let (l, f, s) = (
        local.to_lowercase(),
        first.to_lowercase(),
        last.to_lowercase(),
    );
    if l == format!("{f}.{s}") || l == format!("{f}_{s}") {
        0
    } else if l == f {
        1
    } else if f.chars().next().is_some_and(|c| l == format!("{c}{s}")) {
        2
    } else {
        3
    }
}

/// Extension of an attachment name: lowercase, up to 5 alphanumerics.
fn extension(name: &str) -> String {
    match name.rsplit_once('.') {
        Some((_, ext))
            if !ext.is_empty()
                && ext.len() <= 5
                && ext.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            ext.to_ascii_lowercase()
        }
        _ => "bin".to_string(),
    }
}

/// Reads the directory's entries, sorted by name, skipping hidden files.
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| SourceError::io(format!("cannot read {}", dir.display()), &e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('.') && n != "cmds")
        })
        .collect();
    v.sort();
    Ok(v)
}

/// Least-squares fit of `log V = log K + β log n`.
fn fit_heaps(points: &[(f64, f64)]) -> (f64, f64) {
    let pts: Vec<(f64, f64)> = points
        .iter()
        .filter(|(n, v)| *n > 0.0 && *v > 0.0)
        .map(|(n, v)| (n.ln(), v.ln()))
        .collect();
    let m = pts.len() as f64;
    if m < 2.0 {
        return (1.0, 0.5);
    }
    let (sx, sy) = pts.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / m, sy / m);
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (x, y) in &pts {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
    }
    let beta = if sxx > 0.0 { sxy / sxx } else { 0.5 };
    ((my - beta * mx).exp(), beta)
}

#[derive(Deserialize)]
struct ChatLine {
    text: String,
}

#[derive(Deserialize)]
struct ChatConversation {
    messages: Vec<Vec<ChatLine>>,
}

impl Model {
    /// Learns a model from `$SEALDEX_CORPORA`-style directory `root`
    /// (`spamassassin/`, `multilingual/`, `chitchat/dataset.json`). The
    /// SpamAssassin corpus is required; a missing multilingual corpus or
    /// ChitChat file only leaves those parts out (non-ASCII templates then
    /// fall back to the stream, personal notes to ham text).
    pub fn learn(root: &Path, options: LearnOptions) -> Result<Model, SourceError> {
        let mut words = Interner::default();
        let mut stats = LearnStats::default();
        let mut folders = Vec::new();
        let mut templates = Vec::new();
        let mut body = Vec::new();
        let mut subject = Vec::new();
        let mut names = Interner::default();
        let mut domain_names = Interner::default();
        let (mut first_names, mut last_names, mut domains) = (Vec::new(), Vec::new(), Vec::new());
        let mut styles = [0usize; 4];
        let (mut with_name, mut froms) = (0usize, 0usize);
        let mut extensions = Interner::default();
        // Heaps' law: distinct normalised tokens against tokens, corpus order.
        let mut seen: HashSet<String> = HashSet::new();
        let mut tokens = 0u64;
        let mut heaps_points = Vec::new();
        let mut norm = String::new();
        let parser = mail_parser::MessageParser::default();
        let decryptor = PassThrough::default();

        let spam_root = root.join("spamassassin");
        let mut n = 0usize;
        for dir in sorted_entries(&spam_root)?
            .into_iter()
            .filter(|p| p.is_dir())
        {
            let name = dir
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("unknown")
                .to_string();
            let folder = folders.len() as u16;
            let (b0, s0) = (body.len() as u32, subject.len() as u32);
            for file in sorted_entries(&dir)? {
                n += 1;
                if !(n - 1).is_multiple_of(options.sample_every.max(1)) {
                    continue;
                }
                let Ok(bytes) = std::fs::read(&file) else {
                    continue;
                };
                stats.messages += 1;
                let raw = RawMessage {
                    id: file.display().to_string(),
                    bytes,
                    ..RawMessage::default()
                };
                let (Ok(msg), Some(parsed)) = (decryptor.decrypt(&raw), parser.parse(&raw.bytes))
                else {
                    stats.unparsed += 1;
                    continue;
                };
                let (mut has_text, mut has_html) = (false, false);
                for part in &parsed.parts {
                    use mail_parser::MimeHeaders;
                    if part.attachment_name().is_some() {
                        continue;
                    }
                    match part.content_type() {
                        Some(ct) if ct.ctype().eq_ignore_ascii_case("text") => {
                            match ct.subtype().map(str::to_ascii_lowercase).as_deref() {
                                Some("html") => has_html = true,
                                _ => has_text = true,
                            }
                        }
                        None if !part.is_multipart() => has_text = true,
                        _ => {}
                    }
                }
                let shape = match (has_text, has_html || matches!(msg.body, Body::Html(_))) {
                    (true, true) => Shape::Alternative,
                    (false, true) => Shape::Html,
                    _ => Shape::Text,
                };
                let mut attachments = Vec::new();
                {
                    use mail_parser::MimeHeaders;
                    for part in parsed.attachments() {
                        if let Some(name) = part.attachment_name() {
                            let ext = extensions.id(&extension(name)) as u16;
                            attachments.push((ext, (part.len() as u32).min(MAX_ATTACHMENT_BYTES)));
                        }
                    }
                }
                let text = clean::body_text(&msg.body);
                let non_ascii = mostly_non_ascii(&text) || mostly_non_ascii(&msg.subject);
                let mut count = 0u32;
                // U+FFFD marks bytes mail-parser could not decode: not text
                // a reader sees, so not part of the vocabulary.
                for w in text.split_whitespace().filter(|w| !w.contains('\u{FFFD}')) {
                    count += 1;
                    if count > MAX_BODY_WORDS {
                        stats.capped_bodies += 1;
                        count = MAX_BODY_WORDS;
                        break;
                    }
                    if !non_ascii {
                        body.push(words.id(w));
                    }
                }
                let (prefix, bare) = strip_prefix(&msg.subject);
                let mut subject_words = 0u8;
                for w in bare
                    .split_whitespace()
                    .filter(|w| !w.contains('\u{FFFD}'))
                    .take(40)
                {
                    subject_words += 1;
                    if !non_ascii {
                        subject.push(words.id(w));
                    }
                }
                for field in [bare, text.as_str()] {
                    norm.clear();
                    clean::normalise_into(field, &mut norm);
                    for (_, t) in clean::tokens(&norm) {
                        tokens += 1;
                        if !seen.contains(t) {
                            seen.insert(t.to_string());
                        }
                    }
                }
                heaps_points.push((tokens as f64, seen.len() as f64));

                let (display, address) = split_address(&msg.from);
                if !address.is_empty() {
                    froms += 1;
                    with_name += usize::from(display.is_some());
                    if let Some((local, domain)) = address.rsplit_once('@') {
                        let domain = domain.trim().to_ascii_lowercase();
                        if !domain.is_empty() && domain.contains('.') {
                            domains.push(domain_names.id(&domain));
                        }
                        if let Some((first, last)) = display.and_then(name_parts) {
                            first_names.push(names.id(first));
                            last_names.push(names.id(last));
                            styles[local_style(local, first, last)] += 1;
                        }
                    }
                }
                let (hour, tz_minutes) = parsed
                    .date()
                    .map(|d| {
                        let tz = i16::from(d.tz_hour) * 60 + i16::from(d.tz_minute);
                        (d.hour.min(23), if d.tz_before_gmt { -tz } else { tz })
                    })
                    .unwrap_or((12, 0));
                let received = parsed
                    .headers()
                    .iter()
                    .filter(|h| h.name().eq_ignore_ascii_case("received"))
                    .count()
                    .min(12) as u8;
                stats.shapes[shape as usize] += 1;
                stats.with_attachments += usize::from(!attachments.is_empty());
                stats.non_ascii += usize::from(non_ascii);
                templates.push(Template {
                    folder,
                    shape,
                    words: count,
                    subject_words: subject_words.max(1),
                    prefix,
                    recipients: msg.to.lines().count().clamp(1, 30) as u8,
                    cc: parsed.cc().is_some(),
                    received,
                    hour,
                    tz_minutes: tz_minutes.clamp(-14 * 60, 14 * 60),
                    non_ascii,
                    attachments,
                });
            }
            folders.push(Folder {
                ham: name.contains("ham"),
                name,
                body: (b0, body.len() as u32),
                subject: (s0, subject.len() as u32),
            });
        }
        // Folders without text (all mostly non-ASCII) cannot serve as a
        // stream: drop them and their templates, renumber the rest.
        let usable: Vec<bool> = folders
            .iter()
            .map(|f| f.body.1 > f.body.0 && f.subject.1 > f.subject.0)
            .collect();
        let mut renumber = Vec::with_capacity(folders.len());
        let mut next = 0u16;
        for ok in &usable {
            renumber.push(next);
            next += u16::from(*ok);
        }
        templates.retain(|t| usable[t.folder as usize]);
        for t in &mut templates {
            t.folder = renumber[t.folder as usize];
        }
        let mut k = 0;
        folders.retain(|_| {
            k += 1;
            usable[k - 1]
        });
        if templates.is_empty() || body.is_empty() {
            return Err(SourceError::other(format!(
                "no usable message under {}",
                spam_root.display()
            )));
        }

        let (heaps_k, heaps_beta) = {
            let total = tokens as f64;
            let pts: Vec<(f64, f64)> = heaps_points
                .iter()
                .copied()
                .filter(|(n, _)| *n >= total / 100.0)
                .collect();
            fit_heaps(&pts)
        };
        stats.normalised_tokens = tokens;
        stats.normalised_vocabulary = seen.len() as u64;
        drop(seen);
        stats.heaps_k = heaps_k;
        stats.heaps_beta = heaps_beta;
        stats.stream_words = body.len();
        stats.vocabulary = words.words.len();
        stats.mean_words =
            templates.iter().map(|t| t.words as f64).sum::<f64>() / templates.len() as f64;
        let body_words: f64 = templates.iter().map(|t| t.words as f64).sum();
        let tokens_per_word = if body_words > 0.0 {
            tokens as f64 / body_words
        } else {
            1.0
        };
        stats.display_name_share = with_name as f64 / froms.max(1) as f64;

        // Multilingual sentences, every language but English.
        let mut languages: Vec<Language> = Vec::new();
        let ml = root.join("multilingual");
        if ml.is_dir() {
            for file in sorted_entries(&ml)? {
                let Some(stem) = file.file_stem().and_then(|s| s.to_str()) else {
                    continue;
                };
                let lang = stem.split('-').next().unwrap_or(stem).to_string();
                if lang == "english" {
                    continue;
                }
                let Ok(text) = std::fs::read_to_string(&file) else {
                    continue;
                };
                let mut in_conversations = false;
                let mut sentences = Vec::new();
                for line in text.lines() {
                    if line.starts_with("conversations:") {
                        in_conversations = true;
                        continue;
                    }
                    if !line.starts_with(' ') && !line.starts_with('-') {
                        in_conversations = false;
                    }
                    if !in_conversations {
                        continue;
                    }
                    let s = line
                        .trim_start_matches([' ', '-'])
                        .trim()
                        .trim_matches(['"', '\''])
                        .trim();
                    if s.chars().count() >= 2 && s != "|" && s != ">" {
                        sentences.push(s.to_string());
                    }
                }
                match languages.iter_mut().find(|l| l.name == lang) {
                    Some(l) => l.sentences.extend(sentences),
                    None if !sentences.is_empty() => languages.push(Language {
                        name: lang,
                        sentences,
                    }),
                    None => {}
                }
            }
        }
        let mut language_cdf = Vec::with_capacity(languages.len());
        let mut acc = 0u64;
        for l in &languages {
            acc += l.sentences.len() as u64;
            language_cdf.push(acc);
        }
        stats.sentences = acc as usize;
        stats.languages = languages.len();

        // ChitChat: each conversation's messages, in id order.
        let (mut chat, mut chat_starts) = (Vec::new(), Vec::new());
        let cc = root.join("chitchat").join("dataset.json");
        if let Ok(bytes) = std::fs::read(&cc) {
            let parsed: std::collections::BTreeMap<String, ChatConversation> =
                serde_json::from_slice(&bytes).map_err(|e| {
                    SourceError::other(format!("{} is not a ChitChat dataset: {e}", cc.display()))
                })?;
            drop(bytes);
            for conv in parsed.into_values().take(options.chat_conversations) {
                chat_starts.push(chat.len() as u32);
                for m in conv.messages.iter().flatten() {
                    let mut any = false;
                    for w in m.text.split_whitespace() {
                        chat.push(words.id(w));
                        any = true;
                    }
                    if any {
                        chat.push(NEWLINE);
                        stats.chat_messages += 1;
                    }
                }
            }
        }

        let mut local_styles = [0.0; 4];
        let total_styles = styles.iter().sum::<usize>().max(1) as f64;
        let mut acc = 0.0;
        for (i, s) in styles.iter().enumerate() {
            acc += *s as f64 / total_styles;
            local_styles[i] = acc;
        }
        if first_names.is_empty() {
            first_names.push(names.id("Alex"));
            last_names.push(names.id("Doe"));
        }
        if domains.is_empty() {
            domains.push(domain_names.id("example.org"));
        }
        let ham_templates = templates
            .iter()
            .enumerate()
            .filter(|(_, t)| folders.get(t.folder as usize).is_some_and(|f| f.ham))
            .map(|(i, _)| i as u32)
            .collect();
        let corpus_tokens = tokens as f64;
        stats.vocabulary = words.words.len();
        let mut model = Model {
            vocab: words.words,
            body,
            subject,
            folders,
            templates,
            ham_templates,
            first_names,
            last_names,
            domains,
            names: names.words,
            domain_names: domain_names.words,
            local_styles,
            display_name_share: stats.display_name_share,
            extensions: extensions.words,
            languages,
            language_cdf,
            chat,
            chat_starts,
            tokens_per_word,
            corpus_tokens,
            heaps_k,
            heaps_beta,
            stats,
        };
        model.shrink();
        Ok(model)
    }

    fn shrink(&mut self) {
        self.vocab.shrink_to_fit();
        self.body.shrink_to_fit();
        self.subject.shrink_to_fit();
        self.chat.shrink_to_fit();
        self.templates.shrink_to_fit();
    }

    /// Writes the model to `path` (postcard).
    pub fn save(&self, path: &Path) -> Result<(), SourceError> {
        let bytes = postcard::to_allocvec(self)
            .map_err(|e| SourceError::other(format!("cannot encode the model: {e}")))?;
        std::fs::write(path, bytes)
            .map_err(|e| SourceError::io(format!("cannot write {}", path.display()), &e))
    }

    /// Reads a model written by [`Model::save`].
    pub fn load(path: &Path) -> Result<Model, SourceError> {
        let bytes = std::fs::read(path)
            .map_err(|e| SourceError::io(format!("cannot read {}", path.display()), &e))?;
        postcard::from_bytes(&bytes)
            .map_err(|e| SourceError::other(format!("{} is not a model: {e}", path.display())))
    }

    /// Folder names, in corpus order.
    pub fn folder_names(&self) -> Vec<&str> {
        self.folders.iter().map(|f| f.name.as_str()).collect()
    }

    /// Bytes the model holds (its vectors' payloads; an estimate of RAM).
    pub fn heap_bytes(&self) -> usize {
        let strings = |v: &[String]| v.iter().map(|s| s.len() + 24).sum::<usize>();
        strings(&self.vocab)
            + strings(&self.names)
            + strings(&self.domain_names)
            + 4 * (self.body.len()
                + self.subject.len()
                + self.chat.len()
                + self.chat_starts.len()
                + self.first_names.len()
                + self.last_names.len()
                + self.domains.len())
            + self.templates.len() * 64
            + self
                .languages
                .iter()
                .map(|l| strings(&l.sentences))
                .sum::<usize>()
    }

    fn folder_of(&self, t: &Template) -> &Folder {
        self.folders
            .get(t.folder as usize)
            .unwrap_or(&self.folders[0])
    }
}

// ---------------------------------------------------------------------------
// Encoding helpers
// ---------------------------------------------------------------------------

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Base64 of `data`, lines of `width` characters (0: one line).
pub fn base64(data: &[u8], width: usize, out: &mut String) {
    let mut col = 0;
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            let c = if k <= chunk.len() {
                B64[((n >> (18 - 6 * k)) & 63) as usize] as char
            } else {
                '='
            };
            out.push(c);
        }
        col += 4;
        if width > 0 && col >= width {
            out.push('\n');
            col = 0;
        }
    }
    if width > 0 && col > 0 {
        out.push('\n');
    }
}

/// Quoted-printable of UTF-8 text with LF line ends (soft breaks at 76).
pub fn quoted_printable(text: &str, out: &mut String) {
    for line in text.split('\n') {
        let mut col = 0;
        let bytes = line.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            let last = i + 1 == bytes.len();
            let plain = (b == b' ' || b == b'\t') && !last || (33..=126).contains(&b) && b != b'=';
            let width = if plain { 1 } else { 3 };
            if col + width > 75 {
                out.push_str("=\n");
                col = 0;
            }
            if plain {
                out.push(b as char);
            } else {
                let _ = write!(out, "={b:02X}");
            }
            col += width;
        }
        out.push('\n');
    }
}

/// A header value: as is when ASCII, else RFC 2047 encoded words of at
/// most 45 bytes of UTF-8 each (split on character boundaries).
fn header_text(s: &str, out: &mut String) {
    if s.is_ascii() {
        out.push_str(s);
        return;
    }
    let mut start = 0;
    let mut first = true;
    while start < s.len() {
        let mut end = (start + 45).min(s.len());
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        if end == start {
            end = s[start..]
                .chars()
                .next()
                .map_or(s.len(), |c| start + c.len_utf8());
        }
        if !first {
            out.push_str("\n ");
        }
        out.push_str("=?UTF-8?B?");
        base64(&s.as_bytes()[start..end], 0, out);
        out.push_str("?=");
        start = end;
        first = false;
    }
}

/// A display name for a header: encoded when non-ASCII, quoted when it has
/// specials.
fn display_name(name: &str, out: &mut String) {
    if !name.is_ascii() {
        header_text(name, out);
    } else if name.contains(|c: char| "()<>[]:;@\\,.\"".contains(c)) {
        out.push('"');
        out.push_str(&name.replace('"', ""));
        out.push('"');
    } else {
        out.push_str(name);
    }
}

fn html_escape(w: &str, out: &mut String) {
    for c in w.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

/// RFC 2822 date of `t` seconds at a zone of `tz` minutes east.
fn rfc2822(t: i64, tz: i16) -> String {
    let offset = chrono::FixedOffset::east_opt(i32::from(tz) * 60)
        .unwrap_or_else(|| chrono::FixedOffset::east_opt(0).expect("zero offset"));
    match chrono::DateTime::from_timestamp(t, 0) {
        Some(d) => d
            .with_timezone(&offset)
            .format("%a, %d %b %Y %H:%M:%S %z")
            .to_string(),
        None => "Thu, 01 Jan 2015 00:00:00 +0000".to_string(),
    }
}

fn content_type_of(ext: &str) -> &'static str {
    match ext {
        "pdf" => "application/pdf",
        "txt" | "pl" | "py" | "c" | "h" | "sh" | "diff" | "patch" => "text/plain",
        "gif" => "image/gif",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "zip" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        "doc" => "application/msword",
        "xls" => "application/vnd.ms-excel",
        "htm" | "html" => "text/html",
        "exe" | "scr" | "pif" => "application/x-msdownload",
        _ => "application/octet-stream",
    }
}

// ---------------------------------------------------------------------------
// The source
// ---------------------------------------------------------------------------

/// One generated message.
#[derive(Clone, Debug)]
pub struct Generated {
    /// Raw RFC 822 bytes (LF line ends).
    pub bytes: Vec<u8>,
    /// The folder (the template's corpus directory).
    pub folder: String,
    /// Unread / flagged.
    pub flags: Flags,
    /// Seconds since the epoch of its `Date:`.
    pub date: i64,
}

/// A person of the synthetic population.
struct Person {
    name: Option<String>,
    address: String,
}

/// `count` synthetic messages as a [`Source`]. See the
/// [module documentation](self).
#[derive(Clone)]
pub struct Synth {
    model: Arc<Model>,
    seed: u64,
    count: u64,
    name: String,
    /// Cumulative Zipf weights of the contacts.
    contacts: Vec<f64>,
}

impl std::fmt::Debug for Synth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Synth")
            .field("seed", &self.seed)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

/// Leads every sync token.
const TOKEN_TAG: &[u8] = b"synth/1:";

fn read_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

impl Synth {
    /// A mailbox of `count` messages made from `model` and `seed`.
    pub fn new(model: Arc<Model>, seed: u64, count: u64) -> Synth {
        let people = (count / 25).clamp(100, 40_000) as usize;
        let mut contacts = Vec::with_capacity(people);
        let mut acc = 0.0;
        for j in 0..people {
            acc += 1.0 / (j + 1) as f64;
            contacts.push(acc);
        }
        Synth {
            model,
            seed,
            count,
            name: format!("synth:{seed:x}:{count}"),
            contacts,
        }
    }

    /// The number of messages.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The id of message `i`.
    pub fn id(&self, i: u64) -> String {
        format!("synth-{i}")
    }

    fn person(&self, j: u64) -> Person {
        let m = &*self.model;
        let mut r = Rng::new(self.seed ^ 0x5EED_C0DE, j);
        let first = &m.names[*r.pick(&m.first_names) as usize];
        let last = &m.names[*r.pick(&m.last_names) as usize];
        let domain = &m.domain_names[*r.pick(&m.domains) as usize];
        let u = r.unit();
        let style = m.local_styles.iter().position(|c| u < *c).unwrap_or(3);
        let ascii = |s: &str| -> String {
            let t: String = s
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_lowercase();
            if t.is_empty() { "x".to_string() } else { t }
        };
        let (f, l) = (ascii(first), ascii(last));
        let local = match style {
            0 => format!("{f}.{l}"),
            1 => f.clone(),
            2 => format!("{}{l}", &f[..1]),
            _ => format!("{}{}", &f[..f.len().min(3)], r.below(1000)),
        };
        Person {
            name: r
                .chance(m.display_name_share)
                .then(|| format!("{first} {last}")),
            address: format!("{local}@{domain}"),
        }
    }

    fn owner(&self) -> Person {
        let mut p = self.person(u64::MAX);
        if p.name.is_none() {
            p.name = Some("Mailbox Owner".to_string());
        }
        p
    }

    fn contact(&self, r: &mut Rng) -> u64 {
        let total = self.contacts.last().copied().unwrap_or(1.0);
        let u = r.unit() * total;
        self.contacts.partition_point(|c| *c < u) as u64
    }

    fn push_person(p: &Person, out: &mut String) {
        match &p.name {
            Some(n) => {
                display_name(n, out);
                let _ = write!(out, " <{}>", p.address);
            }
            None => out.push_str(&p.address),
        }
    }

    /// Never-seen token number `k` of message `i`.
    fn novel(i: u64, k: u64, r: &mut Rng, out: &mut String) {
        const C: &[u8] = b"bdfgklmnprstvz";
        const V: &[u8] = b"aeiou";
        let mut id = (i << 12) | (k & 0xFFF);
        if r.chance(0.25) {
            const A: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789";
            let mut code = Vec::new();
            while id > 0 || code.len() < 6 {
                code.push(A[(id % A.len() as u64) as usize]);
                id /= A.len() as u64;
            }
            code.push(A[r.below(24) as usize]);
            out.extend(code.iter().rev().map(|&b| b as char));
        } else {
            // Bijective base-70 over syllables, at least 3 of them.
            let mut syl = Vec::new();
            let mut x = id + 70 * 70 + 70;
            let base = (C.len() * V.len()) as u64;
            while x > 0 {
                x -= 1;
                syl.push((x % base) as usize);
                x /= base;
            }
            for s in syl.iter().rev() {
                out.push(C[s / V.len()] as char);
                out.push(V[s % V.len()] as char);
            }
        }
    }

    /// Probability that a body word of message `i` is never-seen (Heaps).
    fn novel_rate(&self, i: u64) -> f64 {
        let m = &*self.model;
        let n = (i as f64 + 0.5) * m.stats.mean_words * m.tokens_per_word;
        if n <= m.corpus_tokens || m.heaps_beta <= 0.0 {
            return 0.0;
        }
        let rate = m.heaps_k * m.heaps_beta * n.powf(m.heaps_beta - 1.0) * m.tokens_per_word;
        rate.clamp(0.0, 0.5)
    }

    /// `n` words of body text from `folder`'s stream, as paragraphs of
    /// words (each paragraph a list of words).
    fn stream_words<'m>(
        &'m self,
        i: u64,
        folder: &Folder,
        n: u32,
        r: &mut Rng,
        paragraphs: &mut Vec<Vec<Cow<'m, str>>>,
    ) {
        let m = &*self.model;
        let (lo, hi) = (folder.body.0 as u64, folder.body.1 as u64);
        let rate = self.novel_rate(i);
        let mut para = Vec::new();
        let mut left = n;
        let mut novel = 0;
        while left > 0 {
            let run = r.geometric(MEAN_RUN_WORDS).min(left);
            let start = lo + r.below(hi - lo);
            for k in 0..u64::from(run) {
                let pos = lo + (start - lo + k) % (hi - lo);
                let w = &m.vocab[m.body[pos as usize] as usize];
                if rate > 0.0 && r.chance(rate) {
                    let mut s = String::new();
                    Self::novel(i, novel, r, &mut s);
                    novel += 1;
                    para.push(Cow::Owned(s));
                } else {
                    para.push(Cow::Borrowed(w.as_str()));
                }
                if w.ends_with(['.', '!', '?']) && r.chance(1.0 / 6.0) {
                    paragraphs.push(std::mem::take(&mut para));
                }
            }
            left -= run;
        }
        if !para.is_empty() {
            paragraphs.push(para);
        }
    }

    fn subject_words(&self, folder: &Folder, n: u8, r: &mut Rng) -> String {
        let m = &*self.model;
        let (lo, hi) = (folder.subject.0 as u64, folder.subject.1 as u64);
        let start = r.below(hi - lo);
        let mut s = String::new();
        for k in 0..u64::from(n) {
            if k > 0 {
                s.push(' ');
            }
            s.push_str(&m.vocab[m.subject[(lo + (start + k) % (hi - lo)) as usize] as usize]);
        }
        s
    }

    /// Sentences of one language, about `n` words' worth (≈ 6 characters a
    /// word), as paragraphs; and a subject.
    fn multilingual<'m>(
        &'m self,
        n: u32,
        r: &mut Rng,
        paragraphs: &mut Vec<Vec<Cow<'m, str>>>,
    ) -> String {
        let m = &*self.model;
        let total = m.language_cdf.last().copied().unwrap_or(0);
        let u = r.below(total);
        let lang = &m.languages[m.language_cdf.partition_point(|c| *c <= u)];
        let subject = r.pick(&lang.sentences).clone();
        let mut chars = 0usize;
        let goal = (n as usize * 6).max(20);
        let mut para = Vec::new();
        while chars < goal {
            let s = r.pick(&lang.sentences);
            chars += s.chars().count() + 1;
            para.push(Cow::Borrowed(s.as_str()));
            if r.chance(0.25) {
                paragraphs.push(std::mem::take(&mut para));
            }
        }
        if !para.is_empty() {
            paragraphs.push(para);
        }
        subject
    }

    /// ChitChat lines of one conversation onwards, about `n` words.
    fn chat<'m>(&'m self, n: u32, r: &mut Rng, paragraphs: &mut Vec<Vec<Cow<'m, str>>>) -> String {
        let m = &*self.model;
        let start = *r.pick(&m.chat_starts) as usize;
        let mut line = Vec::new();
        let mut left = n.clamp(5, 400);
        let mut pos = start;
        while left > 0 || !line.is_empty() {
            let id = m.chat[pos % m.chat.len()];
            pos += 1;
            if id == NEWLINE {
                paragraphs.push(std::mem::take(&mut line));
                if left == 0 {
                    break;
                }
                continue;
            }
            line.push(Cow::Borrowed(m.vocab[id as usize].as_str()));
            left = left.saturating_sub(1);
        }
        let first: Vec<&str> = paragraphs
            .first()
            .map(|p| p.iter().take(6).map(|w| w.as_ref()).collect())
            .unwrap_or_default();
        first.join(" ")
    }

    /// Makes message `i` (any `i`, also beyond `count`).
    pub fn generate(&self, i: u64) -> Generated {
        let m = &*self.model;
        let mut r = Rng::new(self.seed, i);
        let t = r.pick(&m.templates).clone();
        let folder = m.folder_of(&t);
        let personal = !m.chat.is_empty() && folder.ham && r.chance(PERSONAL_SHARE);
        let multilingual = t.non_ascii && !m.languages.is_empty() && !personal;

        // Date: position in the range, jitter, the template's hour and zone.
        let span = (LAST_DAY - FIRST_DAY) as f64;
        let n = self.count.max(1) as f64;
        let day_start = FIRST_DAY as f64 + (i as f64 + 0.5) / n * span;
        let jitter = (r.unit() - 0.5) * 4.0 * 86_400.0;
        let base = (day_start + jitter) as i64;
        let midnight = base - base.rem_euclid(86_400);
        let local = i64::from(t.hour) * 3600 + r.below(3600) as i64;
        let date = midnight + local - i64::from(t.tz_minutes) * 60;

        let mut paragraphs: Vec<Vec<Cow<'_, str>>> = Vec::new();
        let (subject, prefix) = if personal {
            let s = self.chat(t.words, &mut r, &mut paragraphs);
            (s, SubjectPrefix::Re)
        } else if multilingual {
            let s = self.multilingual(t.words, &mut r, &mut paragraphs);
            (s, t.prefix)
        } else {
            self.stream_words(i, folder, t.words.max(1), &mut r, &mut paragraphs);
            (
                self.subject_words(folder, t.subject_words, &mut r),
                t.prefix,
            )
        };
        let subject = match prefix {
            SubjectPrefix::None => subject,
            SubjectPrefix::Re => format!("Re: {subject}"),
            SubjectPrefix::Fwd => format!("Fwd: {subject}"),
        };

        let sender = self.person(self.contact(&mut r));
        let owner = self.owner();
        let mut to = vec![owner];
        let mut cc = Vec::new();
        for k in 1..t.recipients {
            let p = self.person(self.contact(&mut r));
            if t.cc && k == t.recipients - 1 {
                cc.push(p);
            } else {
                to.push(p);
            }
        }
        let sender_domain = sender
            .address
            .rsplit_once('@')
            .map_or("example.org", |(_, d)| d)
            .to_string();
        let owner_domain = to[0]
            .address
            .rsplit_once('@')
            .map_or("example.org", |(_, d)| d)
            .to_string();

        let mut h = String::with_capacity(4096);
        let date_s = rfc2822(date, t.tz_minutes);
        for k in 0..t.received {
            let _ = write!(
                h,
                "Received: from mx{}.{} ([10.{}.{}.{}])\n\tby mx{}.{} with ESMTP id {:012X};\n\t{}\n",
                r.below(9),
                sender_domain,
                r.below(256),
                r.below(256),
                r.below(256),
                k,
                owner_domain,
                r.next_u64() >> 16,
                date_s
            );
        }
        h.push_str("From: ");
        Self::push_person(&sender, &mut h);
        h.push_str("\nTo: ");
        for (k, p) in to.iter().enumerate() {
            if k > 0 {
                h.push_str(",\n    ");
            }
            Self::push_person(p, &mut h);
        }
        if !cc.is_empty() {
            h.push_str("\nCc: ");
            for (k, p) in cc.iter().enumerate() {
                if k > 0 {
                    h.push_str(",\n    ");
                }
                Self::push_person(p, &mut h);
            }
        }
        h.push_str("\nSubject: ");
        header_text(&subject, &mut h);
        let _ = write!(
            h,
            "\nDate: {date_s}\nMessage-ID: <{:016x}.{i}@{sender_domain}>\nMIME-Version: 1.0\n",
            r.next_u64()
        );

        // Bodies.
        let text = wrap(&paragraphs);
        let html = if t.shape == Shape::Text {
            String::new()
        } else {
            to_html(&subject, &paragraphs, &sender_domain, &mut r)
        };
        let mut attachments = Vec::new();
        for (ext, size) in &t.attachments {
            let ext = m
                .extensions
                .get(*ext as usize)
                .map_or("bin", String::as_str);
            let mut name = String::new();
            for k in 0..2 {
                let w = &m.vocab[m.body[r.below(m.body.len() as u64) as usize] as usize];
                let w: String = w
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric())
                    .take(16)
                    .collect();
                if !w.is_empty() {
                    if k > 0 && !name.is_empty() {
                        name.push('_');
                    }
                    name.push_str(&w);
                }
            }
            if name.is_empty() {
                name.push_str("file");
            }
            let _ = write!(name, ".{ext}");
            let mut bytes = vec![0u8; *size as usize];
            for chunk in bytes.chunks_mut(8) {
                let x = r.next_u64().to_le_bytes();
                chunk.copy_from_slice(&x[..chunk.len()]);
            }
            attachments.push((name, content_type_of(ext), bytes));
        }

        let boundary = |r: &mut Rng| format!("=_sealdex_{:016x}", r.next_u64());
        let body_part = |out: &mut String, r: &mut Rng| match t.shape {
            Shape::Text => text_part(&text, "text/plain", out),
            Shape::Html => text_part(&html, "text/html", out),
            Shape::Alternative => {
                let b = boundary(r);
                let _ = write!(
                    out,
                    "Content-Type: multipart/alternative; boundary=\"{b}\"\n\n"
                );
                let _ = writeln!(out, "--{b}");
                text_part(&text, "text/plain", out);
                let _ = writeln!(out, "\n--{b}");
                text_part(&html, "text/html", out);
                let _ = writeln!(out, "\n--{b}--");
            }
        };
        let mut msg = h;
        if attachments.is_empty() {
            body_part(&mut msg, &mut r);
        } else {
            let b = boundary(&mut r);
            let _ = write!(
                msg,
                "Content-Type: multipart/mixed; boundary=\"{b}\"\n\nThis is a multi-part message in MIME format.\n\n--{b}\n"
            );
            body_part(&mut msg, &mut r);
            for (name, ctype, bytes) in &attachments {
                let _ = write!(
                    msg,
                    "\n--{b}\nContent-Type: {ctype}; name=\"{name}\"\nContent-Disposition: attachment; filename=\"{name}\"\nContent-Transfer-Encoding: base64\n\n"
                );
                base64(bytes, 76, &mut msg);
            }
            let _ = writeln!(msg, "\n--{b}--");
        }

        let mut flags = Flags::empty();
        let newest = i >= self.count.saturating_sub(self.count / 100);
        flags.set(Flags::UNREAD, r.chance(if newest { 0.5 } else { 0.02 }));
        flags.set(Flags::FLAGGED, r.chance(0.01));
        Generated {
            bytes: msg.into_bytes(),
            folder: folder.name.clone(),
            flags,
            date,
        }
    }

    fn message_ref(&self, i: u64) -> MessageRef {
        MessageRef {
            id: self.id(i),
            locator: i.to_le_bytes().to_vec(),
            version: None,
            size: None,
        }
    }

    fn token(&self) -> SyncToken {
        let mut t = TOKEN_TAG.to_vec();
        t.extend_from_slice(&self.seed.to_le_bytes());
        t.extend_from_slice(&self.count.to_le_bytes());
        SyncToken(t)
    }
}

/// Text, wrapped at 72 columns, paragraphs apart.
fn wrap(paragraphs: &[Vec<Cow<'_, str>>]) -> String {
    let mut out = String::with_capacity(
        paragraphs
            .iter()
            .map(|p| p.iter().map(|w| w.len() + 1).sum::<usize>() + 1)
            .sum(),
    );
    for (k, p) in paragraphs.iter().enumerate() {
        if k > 0 {
            out.push('\n');
        }
        let mut col = 0;
        for w in p {
            let len = if w.is_ascii() {
                w.len()
            } else {
                w.chars().count()
            };
            if col > 0 && col + 1 + len > 72 {
                out.push('\n');
                col = 0;
            } else if col > 0 {
                out.push(' ');
                col += 1;
            }
            out.push_str(w);
            col += len;
        }
        out.push('\n');
    }
    out
}

/// Tidy HTML of the same paragraphs.
fn to_html(title: &str, paragraphs: &[Vec<Cow<'_, str>>], domain: &str, r: &mut Rng) -> String {
    let mut out = String::from("<html><head><title>");
    html_escape(title, &mut out);
    out.push_str(
        "</title><style>p { margin: 0 0 1em 0; } .hidden { display: none; }</style></head>\n<body>\n",
    );
    for p in paragraphs {
        out.push_str("<p>");
        let mut col = 3;
        for (k, w) in p.iter().enumerate() {
            if k > 0 {
                if col > 72 {
                    out.push('\n');
                    col = 0;
                } else {
                    out.push(' ');
                }
            }
            let before = out.len();
            let roll = r.below(40);
            if roll == 0 {
                out.push_str("<b>");
                html_escape(w, &mut out);
                out.push_str("</b>");
            } else if roll == 1 {
                let _ = write!(out, "<a href=\"https://www.{domain}/{}\">", r.below(10_000));
                html_escape(w, &mut out);
                out.push_str("</a>");
            } else {
                html_escape(w, &mut out);
            }
            col += out.len() - before + 1;
        }
        out.push_str("</p>\n");
    }
    out.push_str("</body></html>\n");
    out
}

/// Writes a text part's headers and body: 7bit when ASCII,
/// quoted-printable when mostly ASCII, base64 otherwise.
fn text_part(body: &str, ctype: &str, out: &mut String) {
    if body.is_ascii() {
        let _ = write!(
            out,
            "Content-Type: {ctype}; charset=us-ascii\nContent-Transfer-Encoding: 7bit\n\n{body}"
        );
    } else if body.chars().filter(|c| !c.is_ascii()).count() * 10 < body.len() {
        let _ = write!(
            out,
            "Content-Type: {ctype}; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n"
        );
        quoted_printable(body, out);
    } else {
        let _ = write!(
            out,
            "Content-Type: {ctype}; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
        );
        base64(body.as_bytes(), 76, out);
    }
}

impl Source for Synth {
    fn name(&self) -> &str {
        &self.name
    }

    fn list(&mut self, cursor: Option<&Cursor>, limit: usize) -> Result<Page, SourceError> {
        let start = match cursor {
            None => 0,
            Some(c) => read_u64(&c.0)
                .filter(|i| *i <= self.count)
                .ok_or_else(|| SourceError::malformed("invalid synth cursor"))?,
        };
        let end = start.saturating_add(limit.max(1) as u64).min(self.count);
        Ok(Page {
            refs: (start..end).map(|i| self.message_ref(i)).collect(),
            next: (end < self.count).then(|| Cursor(end.to_le_bytes().to_vec())),
            total: Some(self.count),
        })
    }

    fn fetch(&mut self, refs: &[MessageRef]) -> Vec<Result<RawMessage, FetchError>> {
        refs.iter()
            .map(|r| {
                let i = read_u64(&r.locator)
                    .filter(|i| *i < self.count && self.id(*i) == r.id)
                    .ok_or_else(|| FetchError {
                        id: r.id.clone(),
                        reason: "no such synthetic message".to_string(),
                    })?;
                let g = self.generate(i);
                Ok(RawMessage {
                    id: r.id.clone(),
                    bytes: g.bytes,
                    folder: Some(g.folder),
                    labels: Vec::new(),
                    flags: Some(g.flags),
                    version: None,
                })
            })
            .collect()
    }

    fn sync_token(&mut self) -> Result<SyncToken, SourceError> {
        Ok(self.token())
    }

    fn changes(&mut self, since: &SyncToken) -> Result<Changes, SourceError> {
        if !since.0.starts_with(TOKEN_TAG) {
            return Err(SourceError::malformed("not a synth sync token"));
        }
        // The mailbox is immutable: the same token means no change; another
        // (other seed or count) means every message is new to it.
        let changes = if since == &self.token() {
            Vec::new()
        } else {
            (0..self.count)
                .map(|i| sealdex::Change::Created(self.message_ref(i)))
                .collect()
        };
        Ok(Changes {
            changes,
            token: self.token(),
        })
    }
}

/// The model for `$SEALDEX_CORPORA`, learned with `options`.
///
/// # Panics
///
/// When the corpora cannot be read: a bench cannot go on without them.
pub fn learn_from_env(options: LearnOptions) -> Option<Model> {
    let root = std::env::var_os("SEALDEX_CORPORA").map(PathBuf::from)?;
    Some(Model::learn(&root, options).unwrap_or_else(|e| panic!("cannot learn the model: {e}")))
}
