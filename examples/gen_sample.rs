//! Generates `data/demo/sample.mbox`, the sample mailbox that `sealdex demo`
//! indexes and searches.
//!
//! ```text
//! cargo run --example gen_sample -- data/demo/sample.mbox
//! ```
//!
//! The output is committed; this program is how it was made, and how to
//! change it. It is deterministic (a seeded xorshift generator, no clock, no
//! hash-map iteration), so running it again rewrites the same bytes, and a
//! diff of the mbox shows exactly what a change to the generator did.
//!
//! # What is in it, and why
//!
//! About 300 messages to and from Jordan Lee, the mailbox's owner, over 2023
//! and 2024: project threads (kickoffs, agendas, meeting notes), invoices,
//! travel bookings, shipping notifications, newsletters, password resets, a
//! job offer, family photos, recipes and calendar invitations, in English,
//! German, French, Spanish, Portuguese, Japanese, Chinese, Korean, Russian
//! and Greek. The mix is chosen so that each feature of the search has
//! something to show:
//!
//! - words, phrases, exclusions and `OR`: recurring topics with distinct
//!   vocabulary (`invoice`, `"project kickoff"`, `-newsletter`);
//! - `from:`/`to:`: a cast of about 20 people and a dozen senders of
//!   automated mail, some with non-ASCII display names (RFC 2047);
//! - `after:`/`before:`: dates spread over two years, in several time zones;
//! - `has:attachment`, `is:unread`: PDF, ICS, JPEG and DOCX attachments, and
//!   `Status`/`X-Status` headers (read, unread, flagged);
//! - cleaning: HTML with `<style>`, `<script>`, hidden preheaders and inline
//!   `data:` images whose words must *not* be found;
//! - normalisation: quoted-printable and base64 bodies in UTF-8,
//!   ISO-8859-1, windows-1252 and ISO-2022-JP, words with diacritics (café,
//!   Müller, naïve, São Paulo) and CJK text.
//!
//! Attachment bodies are tiny: PDFs are real one-page PDFs; JPEG and DOCX
//! files are stand-ins with the right magic numbers (a JFIF header, an empty
//! ZIP archive) and a comment, because search sees only their names.
//!
//! Everything is fiction written for sealdex; every address is under the
//! reserved example.org, example.com and example.net domains.

use std::fmt::Write as _;

// ---------------------------------------------------------------------------
// Determinism: a seeded PRNG.

/// xorshift64*: tiny, deterministic across platforms, and good enough to
/// pick times and template slots.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `0..n` (n > 0); the modulo bias is irrelevant here.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    /// `k` distinct elements of `xs`, in a random order.
    fn sample<T: Clone>(&mut self, xs: &[T], k: usize) -> Vec<T> {
        let mut idx: Vec<usize> = (0..xs.len()).collect();
        for i in (1..idx.len()).rev() {
            let j = self.below(i + 1);
            idx.swap(i, j);
        }
        idx.into_iter().take(k).map(|i| xs[i].clone()).collect()
    }
}

// ---------------------------------------------------------------------------
// Dates.

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number: (year, month, day).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// Seconds since the epoch of a UTC date and time.
fn utc(y: i64, mo: i64, d: i64, h: i64, mi: i64) -> i64 {
    days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60
}

const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A time zone: fixed, or with European or North American summer time.
/// Summer time is approximated as April to October inclusive, which is right
/// for every date this generator picks except a few days in March and
/// November; no reader of the sample can tell.
#[derive(Clone, Copy)]
enum Tz {
    Fixed(i64),
    Summer(i64),
}

impl Tz {
    /// The UTC offset in minutes at `ts`.
    fn offset(self, ts: i64) -> i64 {
        match self {
            Tz::Fixed(m) => m,
            Tz::Summer(m) => {
                let (_, month, _) = civil_from_days(ts.div_euclid(86_400));
                if (4..=10).contains(&month) { m + 60 } else { m }
            }
        }
    }
}

/// `Tue, 01 Oct 2024 10:00:00 +0200`: the RFC 5322 date of `ts` in `tz`.
fn rfc5322_date(ts: i64, tz: Tz) -> String {
    let off = tz.offset(ts);
    let local = ts + off * 60;
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let sign = if off < 0 { '-' } else { '+' };
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} {sign}{:02}{:02}",
        WEEKDAYS[days.rem_euclid(7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        off.abs() / 60,
        off.abs() % 60
    )
}

/// `Tue Oct  1 10:00:00 2024`: the asctime of `ts` in UTC, for mbox `From ` lines.
fn asctime(ts: i64) -> String {
    let days = ts.div_euclid(86_400);
    let secs = ts.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {}",
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        d,
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        y
    )
}

/// `Mon, Feb 12` of `ts` in `tz`, for text written about a date.
fn short_date(ts: i64, tz: Tz) -> String {
    let local = ts + tz.offset(ts) * 60;
    let days = local.div_euclid(86_400);
    let (_, m, d) = civil_from_days(days);
    format!(
        "{}, {} {d}",
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize]
    )
}

// ---------------------------------------------------------------------------
// Encodings: base64, quoted-printable, RFC 2047, legacy charsets.

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Base64 in lines of 76 characters, as MIME bodies are written.
fn base64_lines(bytes: &[u8]) -> String {
    let flat = base64(bytes);
    let mut out = String::with_capacity(flat.len() + flat.len() / 76 + 1);
    for line in flat.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out
}

/// Quoted-printable (RFC 2045) of `bytes`, whose `\n` are line breaks.
fn quoted_printable(bytes: &[u8]) -> String {
    let mut out = String::new();
    for line in bytes.split(|&b| b == b'\n') {
        let mut col = 0;
        for (i, &b) in line.iter().enumerate() {
            let last = i + 1 == line.len();
            let literal =
                (b == b' ' || b == b'\t') && !last || (33..=126).contains(&b) && b != b'=';
            let piece = if literal {
                (b as char).to_string()
            } else {
                format!("={b:02X}")
            };
            if col + piece.len() > 75 {
                out.push_str("=\n");
                col = 0;
            }
            col += piece.len();
            out.push_str(&piece);
        }
        out.push('\n');
    }
    // `split` yields one empty piece after a final newline: drop its newline.
    if bytes.ends_with(b"\n") {
        out.pop();
    }
    out
}

/// The JIS X 0208 codes of the non-ASCII characters the ISO-2022-JP message
/// uses (computed once with a reference encoder). A table of the characters
/// needed keeps the generator free of an encoding crate.
#[rustfmt::skip]
const JIS: &[(char, u16)] = &[
    ('。', 0x2123), ('い', 0x2424), ('お', 0x242a), ('か', 0x242b), ('く', 0x242f),
    ('さ', 0x2435), ('し', 0x2437), ('す', 0x2439), ('せ', 0x243b), ('た', 0x243f),
    ('ち', 0x2441), ('つ', 0x2444), ('て', 0x2446), ('で', 0x2447), ('と', 0x2448),
    ('に', 0x244b), ('の', 0x244e), ('は', 0x244f), ('ま', 0x245e), ('よ', 0x2468),
    ('ら', 0x2469), ('り', 0x246a), ('れ', 0x246c), ('ろ', 0x246d), ('わ', 0x246f),
    ('ん', 0x2473), ('ア', 0x2522), ('ィ', 0x2523), ('イ', 0x2524), ('オ', 0x252a),
    ('ザ', 0x2536), ('ジ', 0x2538), ('ス', 0x2539), ('ダ', 0x2540), ('デ', 0x2547),
    ('フ', 0x2555), ('プ', 0x2557), ('ョ', 0x2567), ('リ', 0x256a), ('ン', 0x2573),
    ('ー', 0x213c), ('三', 0x3b30), ('中', 0x4366), ('二', 0x4673), ('京', 0x357e),
    ('会', 0x3271), ('前', 0x4130), ('午', 0x3861), ('合', 0x3967), ('場', 0x3e6c),
    ('室', 0x3c3c), ('後', 0x3865), ('思', 0x3b57), ('所', 0x3d6a), ('打', 0x4247),
    ('料', 0x4e41), ('新', 0x3f37), ('日', 0x467c), ('時', 0x3b7e), ('曜', 0x4d4b),
    ('来', 0x4d68), ('東', 0x456c), ('案', 0x3046), ('水', 0x3f65), ('田', 0x4544),
    ('由', 0x4d33), ('疲', 0x4868), ('第', 0x4268), ('紀', 0x352a), ('話', 0x4f43),
    ('議', 0x3544), ('資', 0x3b71), ('送', 0x4177), ('週', 0x3d35), ('願', 0x346a),
];

/// windows-1252's characters in 0x80..0xA0 that are not ISO-8859-1's.
#[rustfmt::skip]
const CP1252: &[(char, u8)] = &[
    ('€', 0x80), ('‚', 0x82), ('ƒ', 0x83), ('„', 0x84), ('…', 0x85), ('†', 0x86),
    ('‡', 0x87), ('ˆ', 0x88), ('‰', 0x89), ('Š', 0x8a), ('‹', 0x8b), ('Œ', 0x8c),
    ('Ž', 0x8e), ('‘', 0x91), ('’', 0x92), ('“', 0x93), ('”', 0x94), ('•', 0x95),
    ('–', 0x96), ('—', 0x97), ('˜', 0x98), ('™', 0x99), ('š', 0x9a), ('›', 0x9b),
    ('œ', 0x9c), ('ž', 0x9e), ('Ÿ', 0x9f),
];

/// The charset of a message's text.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cs {
    Utf8,
    Latin1,
    Cp1252,
    Iso2022Jp,
}

impl Cs {
    fn name(self) -> &'static str {
        match self {
            Cs::Utf8 => "utf-8",
            Cs::Latin1 => "iso-8859-1",
            Cs::Cp1252 => "windows-1252",
            Cs::Iso2022Jp => "iso-2022-jp",
        }
    }

    /// `text` in this charset. Panics on a character the charset lacks: the
    /// texts are ours, so that is a bug in this file.
    fn encode(self, text: &str) -> Vec<u8> {
        match self {
            Cs::Utf8 => text.as_bytes().to_vec(),
            Cs::Latin1 => text
                .chars()
                .map(|c| {
                    u8::try_from(u32::from(c)).unwrap_or_else(|_| panic!("{c:?} not in latin-1"))
                })
                .collect(),
            Cs::Cp1252 => text
                .chars()
                .map(|c| match CP1252.iter().find(|(k, _)| *k == c) {
                    Some((_, b)) => *b,
                    None => u8::try_from(u32::from(c))
                        .ok()
                        .filter(|b| !(0x80..0xa0).contains(b))
                        .unwrap_or_else(|| panic!("{c:?} not in windows-1252")),
                })
                .collect(),
            Cs::Iso2022Jp => {
                let mut out = Vec::new();
                let mut jis = false;
                for c in text.chars() {
                    if c.is_ascii() {
                        if jis {
                            out.extend_from_slice(b"\x1b(B");
                            jis = false;
                        }
                        out.push(c as u8);
                    } else {
                        let code = JIS
                            .iter()
                            .find(|(k, _)| *k == c)
                            .unwrap_or_else(|| panic!("{c:?} missing from the JIS table"))
                            .1;
                        if !jis {
                            out.extend_from_slice(b"\x1b$B");
                            jis = true;
                        }
                        out.extend_from_slice(&code.to_be_bytes());
                    }
                }
                if jis {
                    out.extend_from_slice(b"\x1b(B");
                }
                out
            }
        }
    }
}

/// A header value with RFC 2047 encoded words where it is not ASCII. Uses
/// `B` or `Q` as asked, and splits into words of at most 75 characters,
/// cutting only between characters (a decoder must not see half of one).
fn encode_words(text: &str, cs: Cs, q: bool) -> String {
    if text.is_ascii() {
        return text.to_string();
    }
    if cs == Cs::Iso2022Jp {
        // One self-contained word (escape sequences included); short subjects only.
        return format!("=?ISO-2022-JP?B?{}?=", base64(&cs.encode(text)));
    }
    let prefix = format!(
        "=?{}?{}?",
        cs.name().to_uppercase(),
        if q { 'Q' } else { 'B' }
    );
    let budget = 75 - prefix.len() - 2;
    let enc = |s: &str| -> String {
        let bytes = cs.encode(s);
        if q {
            bytes
                .iter()
                .map(|&b| match b {
                    b' ' => "_".to_string(),
                    b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'!' | b'*' | b'+' | b'-' | b'/' => {
                        (b as char).to_string()
                    }
                    _ => format!("={b:02X}"),
                })
                .collect()
        } else {
            base64(&bytes)
        }
    };
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        let mut next = chunk.clone();
        next.push(c);
        if enc(&next).len() > budget && !chunk.is_empty() {
            words.push(format!("{prefix}{}?=", enc(&chunk)));
            chunk.clear();
        }
        chunk.push(c);
    }
    words.push(format!("{prefix}{}?=", enc(&chunk)));
    words.join("\n ")
}

// ---------------------------------------------------------------------------
// Text helpers.

/// Removes the common indentation of an indented raw string and its first
/// newline, so that bodies can be written indented in this file.
fn t(s: &str) -> String {
    let s = s.strip_prefix('\n').unwrap_or(s);
    let indent = s
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out = String::new();
    for line in s.lines() {
        out.push_str(line.get(indent..).unwrap_or("").trim_end());
        out.push('\n');
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// Wraps lines longer than 72 columns at spaces, as mail clients do; quoted
/// lines and lines without spaces (CJK, URLs) are left alone.
fn wrap(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        if line.chars().count() <= 76 || line.starts_with('>') || !line.contains(' ') {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let mut col = 0;
        for (i, word) in line.split(' ').enumerate() {
            let w = word.chars().count();
            if i > 0 && col + 1 + w > 72 {
                out.push('\n');
                col = 0;
            } else if i > 0 {
                out.push(' ');
                col += 1;
            }
            out.push_str(word);
            col += w;
        }
        out.push('\n');
    }
    out
}

/// A line of text as HTML, its URLs made links as mail clients do.
fn linkify(line: &str) -> String {
    line.split(' ')
        .map(|w| {
            if w.starts_with("https://") {
                let url = html_escape(w);
                format!("<a href=\"{url}\">{url}</a>")
            } else {
                html_escape(w)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

// ---------------------------------------------------------------------------
// The cast.

#[derive(Clone, Copy)]
struct Person {
    name: &'static str,
    addr: &'static str,
    tz: Tz,
}

type P = usize;

const JORDAN: P = 0;
const ALICE: P = 1;
const BOB: P = 2;
const CARLA: P = 3;
const JUERGEN: P = 4;
const AMELIE: P = 5;
const SOFIA: P = 6;
const JOAO: P = 7;
const YUKI: P = 8;
const WEI: P = 9;
const MINJUN: P = 10;
const DMITRI: P = 11;
const ELENI: P = 12;
const PRIYA: P = 13;
const MOM: P = 14;
const DAN: P = 15;
const TOM: P = 16;
const NORTHWIND: P = 17;
const SKYWAYS: P = 18;
const PARCELO: P = 19;
const WEEKLYBYTE: P = 20;
const NIMBUS: P = 21;
const HOTEL: P = 22;
const RAIL: P = 23;
const GARDEN: P = 24;
const DENTAL: P = 25;
const BANK: P = 26;
const LECAFE: P = 27;

const EASTERN: Tz = Tz::Summer(-300);
const PACIFIC: Tz = Tz::Summer(-480);
const CENTRAL_EU: Tz = Tz::Summer(60);

#[rustfmt::skip]
const PEOPLE: [Person; 28] = [
    Person { name: "Jordan Lee", addr: "jordan.lee@example.org", tz: EASTERN },
    Person { name: "Alice Martin", addr: "alice@example.org", tz: EASTERN },
    Person { name: "Bob Chen", addr: "bob.chen@example.com", tz: PACIFIC },
    Person { name: "Carla Rossi", addr: "carla.rossi@example.net", tz: CENTRAL_EU },
    Person { name: "Jürgen Müller", addr: "j.mueller@example.net", tz: CENTRAL_EU },
    Person { name: "Amélie Dubois", addr: "amelie.dubois@example.org", tz: CENTRAL_EU },
    Person { name: "Sofía Hernández", addr: "sofia.hernandez@example.com", tz: CENTRAL_EU },
    Person { name: "João Silva", addr: "joao.silva@example.net", tz: Tz::Fixed(-180) },
    Person { name: "田中 由紀", addr: "yuki.tanaka@example.com", tz: Tz::Fixed(540) },
    Person { name: "张伟", addr: "zhang.wei@example.net", tz: Tz::Fixed(480) },
    Person { name: "김민준", addr: "minjun.kim@example.org", tz: Tz::Fixed(540) },
    Person { name: "Дмитрий Иванов", addr: "dmitri.ivanov@example.com", tz: Tz::Fixed(180) },
    Person { name: "Ελένη Παπαδοπούλου", addr: "eleni.p@example.net", tz: Tz::Summer(120) },
    Person { name: "Priya Natarajan", addr: "priya@harbor-analytics.example.com", tz: Tz::Fixed(330) },
    Person { name: "Margaret Lee", addr: "margaret.lee@example.net", tz: PACIFIC },
    Person { name: "Dan Lee", addr: "dan.lee@example.com", tz: Tz::Summer(-360) },
    Person { name: "Tom Becker", addr: "tom.becker@example.org", tz: EASTERN },
    Person { name: "Northwind Hosting", addr: "billing@northwind.example.com", tz: Tz::Fixed(0) },
    Person { name: "SkyWays Airlines", addr: "noreply@skyways.example.com", tz: Tz::Fixed(0) },
    Person { name: "Parcelo", addr: "tracking@parcelo.example.net", tz: Tz::Fixed(0) },
    Person { name: "The Weekly Byte", addr: "newsletter@weeklybyte.example.org", tz: Tz::Fixed(0) },
    Person { name: "Nimbus Accounts", addr: "no-reply@accounts.example.com", tz: Tz::Fixed(0) },
    Person { name: "Hôtel Lumière", addr: "reservations@hotel-lumiere.example.com", tz: CENTRAL_EU },
    Person { name: "RailEuropa", addr: "tickets@raileuropa.example.net", tz: CENTRAL_EU },
    Person { name: "Green Thumb Weekly", addr: "hello@greenthumb.example.org", tz: EASTERN },
    Person { name: "Bright Smile Dental", addr: "appointments@brightsmile.example.com", tz: EASTERN },
    Person { name: "Harborview Bank", addr: "alerts@harborview-bank.example.com", tz: EASTERN },
    Person { name: "La Lettre du Café", addr: "lettre@cafe-des-arts.example.net", tz: CENTRAL_EU },
];

fn first_name(p: P) -> &'static str {
    PEOPLE[p].name.split(' ').next().unwrap_or(PEOPLE[p].name)
}

/// `Name <addr>` with the name quoted or RFC 2047-encoded as needed.
fn mailbox(p: P, q: bool) -> String {
    let person = PEOPLE[p];
    let name = if person.name.is_ascii() {
        if person.name.contains(|c: char| ".,()<>@:;\"".contains(c)) {
            format!("\"{}\"", person.name)
        } else {
            person.name.to_string()
        }
    } else {
        encode_words(person.name, Cs::Utf8, q)
    };
    format!("{name} <{}>", person.addr)
}

// ---------------------------------------------------------------------------
// Messages.

/// How a message's body is laid out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// text/plain only.
    Plain,
    /// multipart/alternative: text/plain and text/html.
    Alternative,
    /// text/html only.
    HtmlOnly,
}

/// A body's transfer encoding, or `Auto` to let the charset decide.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Te {
    Auto,
    EightBit,
    QuotedPrintable,
    Base64,
}

/// What the HTML version of a message carries besides its text. Every field
/// exists to exercise the cleaner: a preheader is hidden text, a script and
/// a style are not text at all, a `data:` image is bytes in an attribute.
#[derive(Clone, Default)]
struct Html {
    /// Hidden (`display:none`) preview text shown by inboxes, not by readers.
    preheader: Option<String>,
    /// A tracking `<script>`, which mail clients never run.
    script: bool,
    /// An inline `data:` logo image.
    logo: bool,
    /// A table: header row first.
    table: Vec<Vec<String>>,
    /// Buttons or links: (label, URL).
    links: Vec<(String, String)>,
    /// Small print at the bottom.
    footer: Option<String>,
    /// Accent colour of the house style.
    accent: &'static str,
}

#[derive(Clone)]
struct Attachment {
    name: String,
    mime: &'static str,
    bytes: Vec<u8>,
}

#[derive(Clone)]
struct Mail {
    from: P,
    to: Vec<P>,
    cc: Vec<P>,
    subject: String,
    text: String,
    layout: Layout,
    html: Html,
    attachments: Vec<Attachment>,
    cs: Cs,
    te: Te,
    ts: i64,
    parent: Option<usize>,
    flagged: bool,
    /// `Some(true)` forces unread, `Some(false)` read; `None` lets the date decide.
    unread: Option<bool>,
    headers: Vec<(String, String)>,
    /// Whether encoded words use Q (else B), varied per message.
    q_words: bool,
}

impl Mail {
    fn new(from: P, to: &[P], subject: &str, text: String, ts: i64) -> Mail {
        Mail {
            from,
            to: to.to_vec(),
            cc: Vec::new(),
            subject: subject.to_string(),
            text,
            layout: Layout::Plain,
            html: Html::default(),
            attachments: Vec::new(),
            cs: Cs::Utf8,
            te: Te::Auto,
            ts,
            parent: None,
            flagged: false,
            unread: None,
            headers: Vec::new(),
            q_words: false,
        }
    }
    fn cc(mut self, cc: &[P]) -> Mail {
        self.cc = cc.to_vec();
        self
    }
    fn alt(mut self, html: Html) -> Mail {
        self.layout = Layout::Alternative;
        self.html = html;
        self
    }
    fn html_only(mut self, html: Html) -> Mail {
        self.layout = Layout::HtmlOnly;
        self.html = html;
        self
    }
    fn attach(mut self, a: Attachment) -> Mail {
        self.attachments.push(a);
        self
    }
    fn charset(mut self, cs: Cs) -> Mail {
        self.cs = cs;
        self
    }
    fn te(mut self, te: Te) -> Mail {
        self.te = te;
        self
    }
    fn flagged(mut self) -> Mail {
        self.flagged = true;
        self
    }
    fn unread(mut self, unread: bool) -> Mail {
        self.unread = Some(unread);
        self
    }
    fn header(mut self, k: &str, v: &str) -> Mail {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
    fn q(mut self) -> Mail {
        self.q_words = true;
        self
    }
}

/// The sample under construction.
struct Gen {
    rng: Rng,
    mails: Vec<Mail>,
}

/// The span of the sample: 2023-01-02 to 2024-12-20.
const START_DAY: i64 = 19_359;
const END_DAY: i64 = 20_077;
/// Mail after this is recent enough to be unread.
const RECENT: i64 = 1_732_060_800; // 2024-11-20

impl Gen {
    fn add(&mut self, m: Mail) -> usize {
        self.mails.push(m);
        self.mails.len() - 1
    }

    /// A time on a random day between the two dates (inclusive, as day
    /// numbers), at a waking hour of `who`.
    fn when(&mut self, who: P, from_day: i64, to_day: i64) -> i64 {
        let day = self.rng.range(from_day, to_day);
        let (h, mi) = (self.rng.range(8, 21), self.rng.range(0, 59));
        at_local(who, day, h, mi)
    }

    /// A random time in the whole span, at a waking hour of `who`.
    fn any_time(&mut self, who: P) -> i64 {
        self.when(who, START_DAY, END_DAY)
    }

    /// A plausible time for `who` to answer something sent at `ts`: minutes
    /// to a day later, moved out of the night.
    fn later(&mut self, who: P, ts: i64) -> i64 {
        let mut t = ts + self.rng.range(7 * 60, 26 * 3600);
        let local_hour = (t + PEOPLE[who].tz.offset(t) * 60).rem_euclid(86_400) / 3600;
        if local_hour < 7 {
            t += (8 - local_hour) * 3600;
        } else if local_hour >= 23 {
            t += 9 * 3600;
        }
        t
    }

    /// A reply from `from` to message `parent`: `Re:` subject, threading
    /// headers, the parent's start quoted, sent to the parent's sender with
    /// everyone else in Cc (reply-all).
    fn reply(&mut self, parent: usize, from: P, text: &str) -> Mail {
        let p = self.mails[parent].clone();
        let subject = if p.subject.starts_with("Re: ") || p.subject.starts_with("RE: ") {
            p.subject.clone()
        } else {
            format!("Re: {}", p.subject.trim_start_matches("Fwd: "))
        };
        let to = if p.from == from {
            p.to.clone()
        } else {
            vec![p.from]
        };
        let mut cc: Vec<P> =
            p.to.iter()
                .chain(&p.cc)
                .copied()
                .filter(|x| *x != from && !to.contains(x))
                .collect();
        cc.dedup();
        let quoted: String = p
            .text
            .lines()
            .take(8)
            .map(|l| {
                if l.is_empty() {
                    ">\n".to_string()
                } else {
                    format!("> {l}\n")
                }
            })
            .collect();
        let body = format!(
            "{}\nOn {}, {} wrote:\n{quoted}",
            text.trim_end_matches('\n').to_string() + "\n",
            short_date(p.ts, PEOPLE[from].tz),
            PEOPLE[p.from].name,
        );
        let ts = self.later(from, p.ts);
        let mut m = Mail::new(from, &to, &subject, body, ts).cc(&cc);
        m.parent = Some(parent);
        m.cs = if p.cs == Cs::Iso2022Jp {
            Cs::Utf8
        } else {
            p.cs
        };
        m
    }

    /// A forward of message `parent` by `from` to `to`, with a note above
    /// it; attachments go along, as they do in real clients.
    fn forward(&mut self, parent: usize, from: P, to: &[P], note: &str) -> Mail {
        let p = self.mails[parent].clone();
        let mut recipients =
            p.to.iter()
                .map(|x| mailbox_plain(*x))
                .collect::<Vec<_>>()
                .join(", ");
        if recipients.is_empty() {
            recipients = mailbox_plain(JORDAN);
        }
        let body = format!(
            "{}\n---------- Forwarded message ---------\nFrom: {}\nDate: {}\nSubject: {}\nTo: {recipients}\n\n{}",
            note.trim_end_matches('\n').to_string() + "\n",
            mailbox_plain(p.from),
            rfc5322_date(p.ts, PEOPLE[p.from].tz),
            p.subject,
            p.text,
        );
        let ts = self.later(from, p.ts);
        let mut m = Mail::new(from, to, &format!("Fwd: {}", p.subject), body, ts);
        m.attachments = p.attachments.clone();
        m.cs = if p.cs == Cs::Iso2022Jp {
            Cs::Utf8
        } else {
            p.cs
        };
        m
    }
}

/// `h:mi` local time of `who` on day `day`, as a timestamp. The seconds
/// are derived from the inputs, so that hand-placed messages do not all
/// fall on a full minute.
fn at_local(who: P, day: i64, h: i64, mi: i64) -> i64 {
    let s = (day * 31 + h * 7 + mi * 13 + who as i64).rem_euclid(60);
    let guess = day * 86_400 + h * 3600 + mi * 60 + s;
    guess - PEOPLE[who].tz.offset(guess) * 60
}

/// `Name <addr>` without any encoding, for text in bodies.
fn mailbox_plain(p: P) -> String {
    format!("{} <{}>", PEOPLE[p].name, PEOPLE[p].addr)
}

// ---------------------------------------------------------------------------
// Attachments.

/// A one-page PDF showing `lines` (ASCII) in Helvetica: small, and real, so
/// that a future attachment extractor has something to read.
fn pdf(lines: &[&str]) -> Attachment {
    let mut content = String::from("BT /F1 12 Tf 72 770 Td 16 TL");
    for line in lines {
        let escaped = line
            .replace('\\', "\\\\")
            .replace('(', "\\(")
            .replace(')', "\\)");
        let _ = write!(content, " ({escaped}) '");
    }
    content.push_str(" ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_string(),
        format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
    ];
    let mut out = String::from("%PDF-1.4\n");
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        let _ = write!(out, "{} 0 obj\n{o}\nendobj\n", i + 1);
    }
    let xref = out.len();
    let _ = write!(out, "xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for off in offsets {
        let _ = writeln!(out, "{off:010} 00000 n ");
    }
    let _ = write!(
        out,
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    );
    Attachment {
        name: String::new(),
        mime: "application/pdf",
        bytes: out.into_bytes(),
    }
}

fn named(mut a: Attachment, name: &str) -> Attachment {
    a.name = name.to_string();
    a
}

/// A JPEG stand-in: SOI, a JFIF APP0 header, a comment naming the photo, EOI.
fn jpg(name: &str, caption: &str) -> Attachment {
    let mut b = vec![0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10];
    b.extend_from_slice(b"JFIF\0\x01\x01\x00\x00\x48\x00\x48\x00\x00");
    let comment = format!("sealdex demo photo: {caption}");
    b.extend_from_slice(&[0xff, 0xfe]);
    b.extend_from_slice(&((comment.len() + 2) as u16).to_be_bytes());
    b.extend_from_slice(comment.as_bytes());
    b.extend_from_slice(&[0xff, 0xd9]);
    Attachment {
        name: name.to_string(),
        mime: "image/jpeg",
        bytes: b,
    }
}

/// A DOCX stand-in: an empty but valid ZIP archive whose comment says what
/// the document would be.
fn docx(name: &str, what: &str) -> Attachment {
    let comment = format!("sealdex demo document: {what}");
    let mut b = b"PK\x05\x06".to_vec();
    b.extend_from_slice(&[0; 16]);
    b.extend_from_slice(&(comment.len() as u16).to_le_bytes());
    b.extend_from_slice(comment.as_bytes());
    Attachment {
        name: name.to_string(),
        mime: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        bytes: b,
    }
}

/// An iCalendar invitation to an event of `minutes` at `start`.
fn ics(
    name: &str,
    uid: &str,
    summary: &str,
    start: i64,
    minutes: i64,
    location: &str,
    organizer: P,
) -> Attachment {
    let stamp = |ts: i64| {
        let (y, m, d) = civil_from_days(ts.div_euclid(86_400));
        let s = ts.rem_euclid(86_400);
        format!(
            "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
            s / 3600,
            s / 60 % 60,
            s % 60
        )
    };
    let text = format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//sealdex//demo sample//EN\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:{uid}@example.org\r\nDTSTAMP:{}\r\nDTSTART:{}\r\nDTEND:{}\r\nSUMMARY:{summary}\r\nLOCATION:{location}\r\nORGANIZER;CN={}:mailto:{}\r\nATTENDEE;CN=Jordan Lee;RSVP=TRUE:mailto:jordan.lee@example.org\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        stamp(start - 7 * 86_400),
        stamp(start),
        stamp(start + minutes * 60),
        PEOPLE[organizer].name,
        PEOPLE[organizer].addr,
    );
    Attachment {
        name: name.to_string(),
        mime: "text/calendar",
        bytes: text.into_bytes(),
    }
}

// ---------------------------------------------------------------------------
// Rendering.

/// A MIME entity: headers and a body, or a multipart of entities.
enum Part {
    Leaf {
        headers: Vec<String>,
        body: String,
    },
    Multi {
        subtype: &'static str,
        boundary: String,
        parts: Vec<Part>,
    },
}

impl Part {
    fn headers(&self) -> Vec<String> {
        match self {
            Part::Leaf { headers, .. } => headers.clone(),
            Part::Multi {
                subtype, boundary, ..
            } => {
                vec![format!(
                    "Content-Type: multipart/{subtype};\n boundary=\"{boundary}\""
                )]
            }
        }
    }

    fn body(&self) -> String {
        match self {
            Part::Leaf { body, .. } => body.clone(),
            Part::Multi {
                boundary, parts, ..
            } => {
                let mut out = String::from("This is a multi-part message in MIME format.\n");
                for p in parts {
                    let _ = write!(out, "\n--{boundary}\n");
                    for h in p.headers() {
                        out.push_str(&h);
                        out.push('\n');
                    }
                    out.push('\n');
                    out.push_str(&p.body());
                    if !out.ends_with('\n') {
                        out.push('\n');
                    }
                }
                let _ = write!(out, "\n--{boundary}--\n");
                out
            }
        }
    }
}

/// Whether text is mostly outside Latin scripts, where mail clients tend to
/// choose base64 over quoted-printable (which would triple its size).
fn mostly_non_latin(text: &str) -> bool {
    let non = text.chars().filter(|c| u32::from(*c) > 0x2ff).count();
    non * 4 > text.chars().count()
}

/// A text leaf (`plain` or `html`) in `cs`, encoded as `te` asks or as its
/// content suggests.
fn text_leaf(subtype: &str, text: &str, cs: Cs, te: Te) -> Part {
    let bytes = cs.encode(text);
    let te = match te {
        // ASCII (ISO-2022-JP is ASCII too) with short lines needs no encoding.
        Te::Auto if bytes.is_ascii() && bytes.split(|b| *b == b'\n').all(|l| l.len() <= 900) => {
            Te::Auto
        }
        Te::Auto if mostly_non_latin(text) => Te::Base64,
        Te::Auto => Te::QuotedPrintable,
        other => other,
    };
    let (name, body) = match te {
        Te::Auto | Te::EightBit if bytes.is_ascii() => {
            ("7bit", String::from_utf8_lossy(&bytes).into_owned())
        }
        // 8bit bodies in a legacy charset are not UTF-8: carried as raw bytes,
        // see `raw_body` below.
        Te::EightBit => ("8bit", raw_body(&bytes)),
        Te::QuotedPrintable => ("quoted-printable", quoted_printable(&bytes)),
        Te::Base64 | Te::Auto => ("base64", base64_lines(&bytes)),
    };
    Part::Leaf {
        headers: vec![
            format!("Content-Type: text/{subtype}; charset=\"{}\"", cs.name()),
            format!("Content-Transfer-Encoding: {name}"),
        ],
        body,
    }
}

/// Raw 8-bit bytes smuggled through a `String`: each byte becomes the char
/// U+E000 + byte, turned back into the byte when the message is written
/// (see [`finish_bytes`]). Keeps the renderer on `String`s while still
/// letting a few messages carry genuine 8-bit ISO-8859-1 bytes.
fn raw_body(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii() {
                b as char
            } else {
                char::from_u32(0xe000 + u32::from(b)).unwrap_or('?')
            }
        })
        .collect()
}

/// Turns a rendered message into bytes, undoing [`raw_body`]'s mapping.
fn finish_bytes(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for c in s.chars() {
        let u = u32::from(c);
        if (0xe080..=0xe0ff).contains(&u) {
            out.push((u - 0xe000) as u8);
        } else {
            let mut buf = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    out
}

/// A 1×1 transparent GIF: the classic tracking pixel, here a logo stand-in.
const PIXEL_GIF: &[u8] = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";

/// The HTML version of a message: its text as paragraphs (lines starting
/// with `- ` as a list), in the sender's house style.
fn render_html(m: &Mail, id: usize) -> String {
    let h = &m.html;
    let accent = if h.accent.is_empty() {
        "#1a73e8"
    } else {
        h.accent
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"{}\">\n<meta name=\"viewport\" content=\"width=device-width\">\n<title>{}</title>\n<style>\nbody {{ font-family: Helvetica, Arial, sans-serif; color: #222; margin: 0; }}\n.wrap {{ max-width: 600px; margin: 0 auto; padding: 16px; }}\n.btn {{ background: {accent}; color: #fff; padding: 10px 18px; border-radius: 4px; text-decoration: none; }}\ntable.items td, table.items th {{ border-bottom: 1px solid #ddd; padding: 6px 8px; text-align: left; }}\n.footer {{ font-size: 11px; color: #888; }}\n</style>\n</head>\n<body>\n",
        m.cs.name(),
        html_escape(&m.subject)
    );
    if let Some(pre) = &h.preheader {
        let _ = writeln!(
            out,
            "<div style=\"display:none;max-height:0;overflow:hidden;mso-hide:all\">{}</div>",
            html_escape(pre)
        );
    }
    out.push_str("<div class=\"wrap\">\n");
    if h.logo {
        let _ = writeln!(
            out,
            "<img src=\"data:image/gif;base64,{}\" width=\"120\" height=\"32\" alt=\"{}\">",
            base64(PIXEL_GIF),
            html_escape(PEOPLE[m.from].name)
        );
    }
    for para in m.text.split("\n\n") {
        let lines: Vec<&str> = para.lines().collect();
        if lines.is_empty() {
            continue;
        }
        if lines.iter().all(|l| l.starts_with("- ")) {
            out.push_str("<ul>\n");
            for l in lines {
                let _ = writeln!(out, "<li>{}</li>", html_escape(&l[2..]));
            }
            out.push_str("</ul>\n");
        } else {
            let joined: Vec<String> = lines.iter().map(|l| linkify(l)).collect();
            let _ = writeln!(out, "<p>{}</p>", joined.join("<br>\n"));
        }
    }
    if let Some((head, rows)) = h.table.split_first() {
        out.push_str(
            "<table class=\"items\" cellpadding=\"0\" cellspacing=\"0\" width=\"100%\">\n<tr>",
        );
        for c in head {
            let _ = write!(out, "<th>{}</th>", html_escape(c));
        }
        out.push_str("</tr>\n");
        for row in rows {
            out.push_str("<tr>");
            for c in row {
                let _ = write!(out, "<td>{}</td>", html_escape(c));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n");
    }
    for (label, url) in &h.links {
        let _ = writeln!(
            out,
            "<p><a class=\"btn\" href=\"{}\">{}</a></p>",
            html_escape(url),
            html_escape(label)
        );
    }
    if let Some(f) = &h.footer {
        let _ = writeln!(out, "<p class=\"footer\">{}</p>", html_escape(f));
    }
    out.push_str("</div>\n");
    if h.script {
        let _ = writeln!(
            out,
            "<script type=\"text/javascript\">\n  window.__mtrk = {{ cid: \"c{id:05}\", pixel: \"https://t.example.net/o.gif?m={id:05}\" }};\n  document.addEventListener(\"DOMContentLoaded\", function () {{ new Image().src = window.__mtrk.pixel; }});\n</script>"
        );
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// An attachment leaf, base64 like every client sends binary data. A name
/// that is not ASCII gets both an RFC 2231 `filename*` and an RFC 2047
/// `name`, as Outlook and Thunderbird send it.
fn attachment_leaf(a: &Attachment) -> Part {
    let (name_param, file_param) = if a.name.is_ascii() {
        (
            format!("name=\"{}\"", a.name),
            format!("filename=\"{}\"", a.name),
        )
    } else {
        let pct: String = a
            .name
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        (
            format!("name=\"{}\"", encode_words(&a.name, Cs::Utf8, false)),
            format!("filename*=UTF-8''{pct}"),
        )
    };
    let extra = if a.mime == "text/calendar" {
        "; method=REQUEST; charset=\"utf-8\""
    } else {
        ""
    };
    Part::Leaf {
        headers: vec![
            format!("Content-Type: {}{extra};\n {name_param}", a.mime),
            format!("Content-Disposition: attachment;\n {file_param}"),
            "Content-Transfer-Encoding: base64".to_string(),
        ],
        body: base64_lines(&a.bytes),
    }
}

/// The Message-ID of message `i` (without angle brackets): a time, a
/// counter-derived tag and the sender's domain, like real clients make.
fn message_id(m: &Mail, i: usize) -> String {
    let domain = PEOPLE[m.from]
        .addr
        .split('@')
        .nth(1)
        .unwrap_or("example.org");
    let tag = (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
    format!("{}.{tag:06x}.{i}@{domain}", m.ts)
}

/// One message, headers and body, as written into the mbox (before `From `
/// escaping).
fn render(mails: &[Mail], i: usize) -> String {
    let m = &mails[i];
    let plain = wrap(&m.text);
    let body_part = match m.layout {
        Layout::Plain => text_leaf("plain", &plain, m.cs, m.te),
        Layout::HtmlOnly => text_leaf("html", &render_html(m, i), m.cs, m.te),
        Layout::Alternative => Part::Multi {
            subtype: "alternative",
            boundary: format!("=_alt_{i:04}_{:08x}", m.ts),
            parts: vec![
                text_leaf("plain", &plain, m.cs, m.te),
                text_leaf(
                    "html",
                    &render_html(m, i),
                    m.cs,
                    if m.te == Te::Base64 {
                        Te::Base64
                    } else {
                        Te::QuotedPrintable
                    },
                ),
            ],
        },
    };
    let top = if m.attachments.is_empty() {
        body_part
    } else {
        let mut parts = vec![body_part];
        parts.extend(m.attachments.iter().map(attachment_leaf));
        Part::Multi {
            subtype: "mixed",
            boundary: format!("=_mix_{i:04}_{:08x}", m.ts),
            parts,
        }
    };

    let mut h = Vec::new();
    h.push(format!("Message-ID: <{}>", message_id(m, i)));
    h.push(format!("Date: {}", rfc5322_date(m.ts, PEOPLE[m.from].tz)));
    h.push(format!("From: {}", mailbox(m.from, m.q_words)));
    let list = |ps: &[P]| {
        ps.iter()
            .map(|p| mailbox(*p, m.q_words))
            .collect::<Vec<_>>()
            .join(",\n ")
    };
    h.push(format!("To: {}", list(&m.to)));
    if !m.cc.is_empty() {
        h.push(format!("Cc: {}", list(&m.cc)));
    }
    h.push(format!(
        "Subject: {}",
        encode_words(&m.subject, m.cs, m.q_words)
    ));
    if let Some(p) = m.parent {
        let mut refs = Vec::new();
        let mut cur = Some(p);
        while let Some(c) = cur {
            refs.push(format!("<{}>", message_id(&mails[c], c)));
            cur = mails[c].parent;
        }
        refs.reverse();
        h.push(format!("In-Reply-To: <{}>", message_id(&mails[p], p)));
        h.push(format!("References: {}", refs.join("\n ")));
    }
    for (k, v) in &m.headers {
        h.push(format!("{k}: {v}"));
    }
    h.push("MIME-Version: 1.0".to_string());
    h.extend(top.headers());
    // Status: RO read, O seen but unread, none at all for new mail; X-Status
    // F flagged, A answered (mutt and Thunderbird write these).
    let unread = m.unread.unwrap_or(false);
    if m.from == JORDAN || !unread {
        h.push("Status: RO".to_string());
    } else if !i.is_multiple_of(3) {
        h.push("Status: O".to_string());
    }
    let answered = m.from != JORDAN
        && mails
            .iter()
            .any(|x| x.parent == Some(i) && x.from == JORDAN);
    let xs = format!(
        "{}{}",
        if answered { "A" } else { "" },
        if m.flagged { "F" } else { "" }
    );
    if !xs.is_empty() {
        h.push(format!("X-Status: {xs}"));
    }
    let mut out = h.join("\n");
    out.push_str("\n\n");
    out.push_str(&top.body());
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// The whole mbox: messages by date, each behind its `From ` line, with
/// mboxrd quoting (`>` added to any line matching `^>*From `, which the
/// reader strips again).
fn mbox(mails: &[Mail]) -> Vec<u8> {
    let mut order: Vec<usize> = (0..mails.len()).collect();
    order.sort_by_key(|&i| (mails[i].ts, i));
    let mut out = Vec::new();
    for i in order {
        let m = &mails[i];
        out.extend_from_slice(
            format!("From {} {}\n", PEOPLE[m.from].addr, asctime(m.ts)).as_bytes(),
        );
        let bytes = finish_bytes(&render(mails, i));
        for line in bytes.split_inclusive(|b| *b == b'\n') {
            let stripped = line
                .iter()
                .position(|b| *b != b'>')
                .map_or(&line[line.len()..], |p| &line[p..]);
            if stripped.starts_with(b"From ") {
                out.push(b'>');
            }
            out.extend_from_slice(line);
        }
        out.push(b'\n');
    }
    out
}

// ---------------------------------------------------------------------------
// Content. Each function writes one strand of the mailbox.

fn day(y: i64, m: i64, d: i64) -> i64 {
    days_from_civil(y, m, d)
}

/// Alice's mail client sends HTML beside the text, with nothing else in it.
fn plain_html() -> Html {
    Html {
        accent: "#0b5394",
        ..Html::default()
    }
}

/// Project Atlas, the website redesign that Alice leads: a kickoff thread,
/// weekly agendas, meeting notes, a forward.
fn atlas(g: &mut Gen) {
    let kickoff_ts = at_local(ALICE, day(2024, 2, 5), 9, 12);
    let kickoff = g.add(
        Mail::new(
            ALICE,
            &[JORDAN, BOB, CARLA],
            "Project kickoff: Atlas website redesign",
            t(r#"
                Hi all,

                Welcome aboard Atlas! Our project kickoff meeting is on Monday, February 12 at 10:00 Eastern in the Harbor room; Carla and Amélie will join by video.

                Goals for the first quarter:
                - a new information architecture for the marketing site
                - a design system the product team can reuse
                - pages that load in under two seconds on a mid-range phone

                Before the kickoff, please skim the research summary Carla shared last week and bring one thing you would change about the current site. I will send the agenda on Friday.

                Video link: https://meet.example.com/atlas-kickoff

                Thanks,
                Alice
            "#),
            kickoff_ts,
        )
        .cc(&[AMELIE])
        .alt(plain_html())
        .flagged(),
    );
    let r1 = g.reply(kickoff, BOB, &t(r#"
        Count me in. I'll bring the Lighthouse numbers for the current homepage; they are not pretty (4.8 s largest contentful paint on a Moto G).

        Bob
    "#));
    let r1 = g.add(r1);
    let r2 = g.reply(kickoff, CARLA, &t(r#"
        Looking forward to it! I'll share the moodboard before Monday.

        From my side, the biggest issue is the navigation: seven top-level items, and in the interviews nobody could find the pricing page.

        Carla
    "#));
    g.add(r2);
    let r3 = g.reply(kickoff, AMELIE, &t(r#"
        Thanks Alice. I will join from Paris; 10:00 Eastern is 16:00 here, perfect.

        Could we add localisation to the agenda? The French and German pages are always three weeks behind the English ones.

        Amélie
    "#));
    let r3 = g.add(r3);
    let r4 = g.reply(
        r3,
        JORDAN,
        "Good point, Amélie. I added localisation to the list for Alice.\n\nJordan\n",
    );
    g.add(r4);
    let r5 = g.reply(r1, ALICE, "Thanks Bob, that number will make the case for the image pipeline better than any slide.\n\nAlice\n");
    g.add(r5.alt(plain_html()));
    let fwd = g.forward(
        kickoff,
        JORDAN,
        &[SOFIA],
        "Hola Sofía, FYI: this is the redesign I mentioned. Would your team be able to take the Spanish pages? No rush, the kickoff is next week.\n\nJordan\n",
    );
    let fwd = g.add(fwd);
    let r = g.reply(
        fwd,
        SOFIA,
        &t(r#"
            ¡Hola Jordan! Sí, claro: podemos encargarnos de las páginas en español a partir de marzo. Te mando un presupuesto la semana que viene.

            Un abrazo,
            Sofía
        "#),
    );
    g.add(r);

    let agenda = g.add(
        Mail::new(
            ALICE,
            &[JORDAN, BOB, CARLA],
            "Agenda: Atlas project kickoff (Mon Feb 12)",
            t(r#"
                Hi all,

                Agenda for Monday's project kickoff:

                - Introductions and roles (5 min)
                - Research summary and the three biggest problems (Carla, 15 min)
                - Performance baseline (Bob, 10 min)
                - Localisation workflow for FR/DE/ES pages (Amélie, 10 min)
                - Milestones and the launch date (Alice, 15 min)
                - Questions

                Alice
            "#),
            at_local(ALICE, day(2024, 2, 9), 15, 40),
        )
        .cc(&[AMELIE])
        .alt(plain_html())
        .attach(named(
            pdf(&[
                "Atlas user research summary",
                "14 interviews, 3 hallway tests",
                "Top problem: navigation",
            ]),
            "Atlas_research_summary.pdf",
        )),
    );
    let _ = agenda;

    let items = [
        "Homepage wireframes review (Carla)",
        "Design tokens: colour and spacing scales",
        "Image pipeline and the performance budget (Bob)",
        "Localisation workflow for the French, German and Spanish pages",
        "CMS migration timeline",
        "Accessibility audit findings",
        "Pricing page copy",
        "Analytics events for the new navigation",
        "Launch checklist and rollback plan",
        "Stakeholder demo preparation",
        "Search on the documentation pages",
        "Cookie banner and consent wording",
    ];
    let actions = [
        "Carla: share the updated homepage mockups by Wednesday",
        "Bob: convert the hero images to AVIF and measure again",
        "Jordan: draft the redirect map for the old URLs",
        "Alice: confirm the launch date with marketing",
        "Amélie: send the glossary to the translators",
        "Bob: set up the staging environment with the new CMS",
        "Carla: run two more hallway tests of the navigation",
        "Jordan: write the analytics event spec",
        "Alice: book the room for the stakeholder demo",
    ];
    for week in 0..13 {
        let d = day(2024, 2, 19) + week * 7 + if week > 6 { 14 } else { 0 };
        let ts = at_local(ALICE, d - 3, 16, g.rng.range(0, 59));
        let picked = g.rng.sample(&items, 4);
        let list: String = picked.iter().map(|i| format!("- {i}\n")).collect();
        let date = short_date(d * 86_400 + 15 * 3600, EASTERN);
        let subject = format!(
            "Atlas weekly sync: agenda for {}",
            date.split(", ").nth(1).unwrap_or(&date)
        );
        let text = format!(
            "Hi team,\n\nHere is the agenda for Monday's weekly meeting (10:00 Eastern, Harbor room and the usual video link):\n\n{list}\nAdd anything I missed by replying to this email.\n\nAlice\n"
        );
        let a =
            g.add(Mail::new(ALICE, &[JORDAN, BOB, CARLA], &subject, text, ts).alt(plain_html()));
        if week % 4 == 1 {
            let r = g.reply(a, CARLA, "Could we swap the first two items? I have to leave at 10:30 for a dentist appointment.\n\nCarla\n");
            g.add(r);
        }
        if week % 2 == 0 {
            let done = g.rng.sample(&actions, 3);
            let list: String = done.iter().map(|i| format!("- {i}\n")).collect();
            let nts = at_local(ALICE, d, 13, g.rng.range(0, 59));
            let notes = format!(
                "Hi all,\n\nNotes from today's Atlas meeting. We went through {} and agreed to keep the launch on track.\n\nAction items:\n\n{list}\nNext meeting: same time next week.\n\nAlice\n",
                picked[0].to_lowercase()
            );
            let short = date.split(", ").nth(1).unwrap_or(&date).to_string();
            let mut m = Mail::new(
                ALICE,
                &[JORDAN, BOB, CARLA],
                &format!("Meeting notes: Atlas weekly sync ({short})"),
                notes,
                nts,
            )
            .cc(&[AMELIE]);
            if week % 4 == 0 {
                m = m.attach(docx(
                    &format!("Atlas_meeting_notes_{}.docx", short.replace(' ', "_")),
                    "Atlas meeting notes",
                ));
            }
            g.add(m);
        }
    }
    let moved = g.add(
        Mail::new(
            ALICE,
            &[JORDAN, BOB, CARLA],
            "Meeting moved: Atlas design review now on Thursday",
            t(r#"
                Hi all,

                The design review moves from Wednesday to Thursday, 14:00 Eastern, because the boardroom is taken. Same video link. Updated invitation attached.

                Alice
            "#),
            at_local(ALICE, day(2024, 3, 11), 8, 55),
        )
        .attach(ics("invite.ics", "atlas-design-review-2024-03-14", "Atlas design review", utc(2024, 3, 14, 18, 0), 60, "Boardroom / https://meet.example.com/atlas", ALICE)),
    );
    let r = g.reply(moved, JORDAN, "Works for me. Thanks Alice!\n");
    g.add(r);
    let launch = g.add(
        Mail::new(
            ALICE,
            &[JORDAN, BOB, CARLA, AMELIE],
            "Atlas is live 🎉",
            t(r#"
                Hi everyone,

                The new site went live at 07:00 this morning. The homepage now loads in 1.6 seconds on the Moto G (down from 4.8), and the pricing page had more visits before lunch than in all of last week.

                Thank you all for a great project. Retrospective next Tuesday, and drinks are on me on Thursday.

                Alice
            "#),
            at_local(ALICE, day(2024, 6, 18), 10, 5),
        )
        .alt(plain_html())
        .flagged(),
    );
    for who in [BOB, AMELIE, CARLA] {
        let text = match who {
            BOB => "Congrats everyone! The image pipeline paid off.\n",
            AMELIE => {
                "Bravo à toute l'équipe ! The French pages went live on the same day for the first time.\n"
            }
            _ => "So proud of this. Thank you Alice for keeping us on track!\n",
        };
        let r = g.reply(launch, who, text);
        g.add(r);
    }
}

/// Project Heron, the mobile app that Bob leads, with the Tokyo, Shanghai
/// and Seoul offices.
fn heron(g: &mut Gen) {
    let kickoff = g.add(
        Mail::new(
            BOB,
            &[JORDAN, YUKI, WEI, MINJUN],
            "Heron mobile app: project kickoff",
            t(r#"
                Hello everyone,

                Heron is the new mobile app for field technicians: offline job lists, photo reports and signatures on site. Our project kickoff is on Thursday, May 11 at 17:00 Pacific, which is Friday morning in Tokyo, Seoul and Shanghai. Sorry, Jordan, it is late for you.

                Please read the product brief before the call and come with questions. Yuki owns design, Wei the backend API, Min-jun the Android build, and Jordan the sync engine.

                Bob
            "#),
            at_local(BOB, day(2023, 5, 3), 10, 20),
        ),
    );
    let r = g.reply(
        kickoff,
        YUKI,
        "Thank you Bob. I will prepare the first wireframes for the job list screen.\n\nYuki\n",
    );
    g.add(r);
    let r = g.reply(kickoff, WEI, "Looking forward to it. I will share the draft API spec on Wednesday so we can discuss the sync model.\n\nWei\n");
    let w = g.add(r);
    let r = g.reply(w, JORDAN, "Great, Wei. Please include how conflicts are reported; technicians often edit the same job offline.\n\nJordan\n");
    g.add(r);

    let topics = [
        "offline sync of job lists",
        "photo upload retries on bad connections",
        "signature capture on small screens",
        "push notification permissions on Android 13",
        "crash reports from the beta testers",
        "battery use during GPS tracking",
        "the app store screenshots",
        "dark mode contrast issues",
    ];
    for i in 0..9 {
        let ts = g.when(BOB, day(2023, 5, 20) + i * 21, day(2023, 5, 27) + i * 21);
        let topic = *g.rng.pick(&topics);
        let n = g.rng.range(3, 14);
        let text = format!(
            "Hi all,\n\nStandup notes for this week.\n\n- Done: {n} tickets closed, beta build {}.{} shipped to testers\n- In progress: {topic}\n- Blocked: waiting on the updated API spec from Wei\n\nNext meeting on Thursday as usual.\n\nBob\n",
            i / 3 + 1,
            i % 3
        );
        let s = g.add(Mail::new(
            BOB,
            &[JORDAN, YUKI, WEI, MINJUN],
            "Heron standup notes",
            text,
            ts,
        ));
        if i % 3 == 2 {
            let r = g.reply(s, MINJUN, &format!("About {topic}: I found the cause, it was a missing permission check. Fix in review.\n\nMin-jun\n"));
            g.add(r);
        }
    }
    let beta = g.add(
        Mail::new(
            BOB,
            &[JORDAN],
            "Heron beta feedback summary",
            t(r#"
                Jordan,

                Summary of the beta feedback (42 testers, three weeks):

                - 31 say the offline mode "just works"
                - 9 lost a photo when the app was killed during upload
                - the signature pad is too small on 5-inch phones

                The photo loss is the sync engine's retry queue; can you take a look before the 1.0 release?

                Bob
            "#),
            at_local(BOB, day(2023, 9, 14), 11, 0),
        )
        .attach(named(pdf(&["Heron beta feedback", "42 testers, 3 weeks"]), "Heron_beta_feedback.pdf"))
        .flagged(),
    );
    let r = g.reply(beta, JORDAN, "On it. The queue is flushed before the upload is confirmed; I'll make it write-ahead and add a test that kills the app mid-upload.\n\nJordan\n");
    g.add(r);
}

/// Project Juniper, the data migration Jordan leads with Dmitri, Eleni and
/// João.
fn juniper(g: &mut Gen) {
    let kickoff = g.add(
        Mail::new(
            JORDAN,
            &[DMITRI, ELENI, JOAO],
            "Juniper data migration: project kickoff on Tuesday",
            t(r#"
                Hi all,

                Juniper moves the customer database from the old data centre to the cloud, with no more than one hour of downtime. The project kickoff meeting is on Tuesday at 15:00 UTC.

                Agenda:
                - scope: 2.3 TB, 410 tables, three applications
                - the cutover plan and who is on call
                - backups, the rollback rehearsal and how we test it

                Dmitri, could you present the backup strategy? Eleni, the application inventory?

                Jordan
            "#),
            at_local(JORDAN, day(2023, 9, 11), 9, 30),
        )
        .flagged(),
    );
    let r = g.reply(
        kickoff,
        DMITRI,
        "Yes, I will present the backup strategy. Fifteen minutes is enough.\n\nDmitri\n",
    );
    g.add(r);
    let r = g.reply(kickoff, ELENI, "Sure. The inventory is almost complete; two applications still have undocumented cron jobs.\n\nEleni\n");
    g.add(r);
    let r = g.reply(kickoff, JOAO, "I'll join from São Paulo. Can we record the meeting? Half of my team is on holiday.\n\nJoão\n");
    let j = g.add(r);
    let r = g.reply(
        j,
        JORDAN,
        "Of course, I will share the recording afterwards.\n",
    );
    g.add(r);
    let plan = g.add(
        Mail::new(
            JORDAN,
            &[DMITRI, ELENI, JOAO],
            "Juniper cutover plan, draft 2",
            t(r#"
            Hi all,

            Draft 2 of the cutover plan:

            - Friday 22:00 UTC: freeze writes, final incremental backup
            - 22:30: restore into the cloud cluster, verify row counts and checksums
            - 23:15: switch the applications' connection strings
            - 23:30: smoke tests; go or rollback decision at 23:45

            The rollback rehearsal is next Wednesday. Comments welcome until Monday.

            Jordan
        "#),
            at_local(JORDAN, day(2023, 10, 20), 14, 0),
        )
        .attach(docx(
            "Juniper_cutover_plan_v2.docx",
            "Juniper cutover plan, draft 2",
        )),
    );
    let r = g.reply(plan, DMITRI, "Checksums for 410 tables will take longer than 45 minutes. I suggest we verify the 20 largest tables fully and sample the rest.\n\nDmitri\n");
    let d = g.add(r);
    let r = g.reply(d, JORDAN, "Agreed, I'll update the plan.\n");
    g.add(r);
    let rehearsal = g.add(Mail::new(
        DMITRI,
        &[JORDAN, ELENI, JOAO],
        "Juniper: rollback rehearsal results",
        t(r#"
            Hi all,

            The rollback rehearsal went well: restore took 38 minutes, switching back the connection strings 4 minutes. One problem: the reporting service caches its connection and needed a restart. Eleni added it to the runbook.

            Dmitri
        "#),
        at_local(DMITRI, day(2023, 11, 2), 18, 30),
    ).attach(named(pdf(&["Juniper rollback rehearsal", "Restore: 38 min", "Switch back: 4 min"]), "rollback_rehearsal_report.pdf")));
    let r = g.reply(
        rehearsal,
        JOAO,
        "Great result. I will run the same rehearsal for the São Paulo replica next week.\n",
    );
    g.add(r);
    g.add(Mail::new(
        JORDAN,
        &[DMITRI, ELENI, JOAO],
        "Juniper: cutover complete",
        t(r#"
            Hi all,

            The cutover finished at 23:41 UTC, four minutes ahead of plan. All smoke tests pass, and the old cluster stays read-only for 30 days.

            Thank you all, especially for staying up so late.

            Jordan
        "#),
        at_local(JORDAN, day(2023, 11, 18), 0, 10),
    ).flagged());
}

/// Invoices: monthly hosting invoices with PDFs, a freelancer's invoice, a
/// German one in ISO-8859-1 and a Spanish one in windows-1252.
fn invoices(g: &mut Gen) {
    let months: Vec<(i64, i64)> = (0..24).map(|i| (2023 + i / 12, i % 12 + 1)).collect();
    let mut picked = g.rng.sample(&months, 15);
    picked.sort();
    for (n, (y, m)) in picked.into_iter().enumerate() {
        let number = format!("NW-{y}-{:04}", m * 3 + 100);
        let amount = 49 + g.rng.range(0, 3) * 20;
        let cents = g.rng.range(0, 99);
        let ts = at_local(NORTHWIND, day(y, m, 2), 6, 15);
        let month = MONTHS[(m - 1) as usize];
        let text = format!(
            "Hello Jordan,\n\nYour invoice {number} for {month} {y} is now available. The total of ${amount}.{cents:02} will be charged to your Visa ending in 4242 on {month} 5.\n\nPlan: Business Cloud (4 vCPU, 8 GB)\nPeriod: {month} 1 to {month} {}\nAmount due: ${amount}.{cents:02}\n\nThe PDF invoice is attached. Questions? Reply to this email or visit https://northwind.example.com/billing\n\nNorthwind Hosting, 12 Harbor Street, Portland\n",
            civil_from_days(day(y, m, 1) + 31 - 1).2.min(31)
        );
        let html = Html {
            preheader: Some(format!(
                "Your {month} invoice is ready: ${amount}.{cents:02}"
            )),
            logo: true,
            script: n % 3 == 0,
            table: vec![
                vec!["Item".into(), "Period".into(), "Amount".into()],
                vec![
                    "Business Cloud (4 vCPU, 8 GB)".into(),
                    format!("{month} {y}"),
                    format!("${}.00", amount - 9),
                ],
                vec![
                    "Backups, 50 GB".into(),
                    format!("{month} {y}"),
                    format!("$9.{cents:02}"),
                ],
            ],
            links: vec![(
                "View invoice".into(),
                format!("https://northwind.example.com/billing/{number}"),
            )],
            footer: Some(
                "You receive this email because you have an account with Northwind Hosting.".into(),
            ),
            accent: "#d35400",
        };
        let pdf = named(
            pdf(&[
                "Northwind Hosting",
                &format!("Invoice {number}"),
                &format!("Period: {month} {y}"),
                &format!("Total: USD {amount}.{cents:02}"),
            ]),
            &format!("Invoice-{number}.pdf"),
        );
        let mut mail = Mail::new(
            NORTHWIND,
            &[JORDAN],
            &format!("Your Northwind Hosting invoice {number}"),
            text,
            ts,
        )
        .alt(html)
        .attach(pdf);
        if n == 7 {
            mail = mail.flagged();
        }
        g.add(mail);
    }
    g.add(
        Mail::new(
            NORTHWIND,
            &[JORDAN],
            "Payment failed for invoice NW-2023-0127",
            t(r#"
                Hello Jordan,

                We could not charge your card for invoice NW-2023-0127 ($69.00). Please update your payment details within 7 days to avoid any interruption of service.

                Update payment method: https://northwind.example.com/billing/payment

                Northwind Hosting
            "#),
            utc(2023, 9, 5, 7, 2),
        )
        .html_only(Html { preheader: Some("Action needed: update your card".into()), logo: true, accent: "#c0392b", links: vec![("Update payment method".into(), "https://northwind.example.com/billing/payment".into())], ..Html::default() })
        .flagged(),
    );

    let carla = g.add(
        Mail::new(
            CARLA,
            &[JORDAN],
            "Invoice #14 – Atlas illustrations",
            t(r#"
                Hi Jordan,

                Please find attached my invoice #14 for the Atlas illustrations (12 spot illustrations and the hero image), €2,400 as agreed. Payment within 30 days to the IBAN on the invoice.

                Grazie mille,
                Carla
            "#),
            at_local(CARLA, day(2024, 5, 3), 11, 10),
        )
        .attach(named(pdf(&["Carla Rossi Illustrazione", "Invoice 14", "Atlas illustrations", "Total: EUR 2,400.00"]), "Invoice_14_Carla_Rossi.pdf")),
    );
    let r = g.reply(
        carla,
        JORDAN,
        "Thanks Carla, paid today. The illustrations look fantastic on the new site.\n\nJordan\n",
    );
    g.add(r);

    g.add(
        Mail::new(
            JUERGEN,
            &[JORDAN],
            "Rechnung Nr. 2024-031, Übersetzung der Produktseiten",
            t(r#"
                Hallo Jordan,

                anbei meine Rechnung Nr. 2024-031 für die Übersetzung der Produktseiten ins Deutsche (18.400 Wörter).

                Betrag: 1.840,00 EUR
                Zahlbar innerhalb von 14 Tagen ohne Abzug.

                Vielen Dank für die angenehme Zusammenarbeit. Die Änderungen an der Preisseite schicke ich dir nächste Woche.

                Viele Grüße aus München
                Jürgen Müller
            "#),
            at_local(JUERGEN, day(2024, 4, 8), 9, 45),
        )
        .charset(Cs::Latin1)
        .q()
        .attach(named(pdf(&["Juergen Mueller - Uebersetzungen", "Rechnung Nr. 2024-031", "Betrag: 1.840,00 EUR"]), "Rechnung_2024-031.pdf")),
    );

    g.add(
        Mail::new(
            SOFIA,
            &[JORDAN],
            "Factura 2024/117 – traducción al español",
            t(r#"
                Hola Jordan:

                Te adjunto la factura 2024/117 por la traducción de las páginas de Atlas al español: 1.250 € (IVA no incluido, operación intracomunitaria).

                ¿Podrías confirmarme que la recibiste? Nuestro departamento de contabilidad cierra el trimestre el viernes.

                Muchas gracias y un saludo,
                Sofía Hernández
            "#),
            at_local(SOFIA, day(2024, 4, 15), 12, 30),
        )
        .charset(Cs::Cp1252)
        .attach(named(pdf(&["Traducciones Hernandez S.L.", "Factura 2024/117", "Total: 1.250,00 EUR"]), "Factura_2024-117.pdf")),
    );
}

/// Travel: flights, a hotel, a train ticket, and the trips around them.
fn travel(g: &mut Gen) {
    let flights = [
        (
            "K7Q2XP",
            "New York (JFK)",
            "São Paulo (GRU)",
            "SW 247",
            day(2024, 4, 11),
            day(2024, 3, 2),
            utc(2024, 4, 12, 1, 30),
        ),
        (
            "M3TR8L",
            "Boston (BOS)",
            "Lisbon (LIS)",
            "SW 118",
            day(2023, 6, 16),
            day(2023, 5, 1),
            utc(2023, 6, 16, 23, 15),
        ),
        (
            "Z9WQ4D",
            "Boston (BOS)",
            "Tokyo (HND)",
            "SW 7",
            day(2024, 10, 14),
            day(2024, 8, 28),
            utc(2024, 10, 14, 16, 40),
        ),
        (
            "B5NE2K",
            "Paris (CDG)",
            "Boston (BOS)",
            "SW 31",
            day(2023, 9, 24),
            day(2023, 8, 19),
            utc(2023, 9, 24, 14, 5),
        ),
    ];
    for (i, (code, from, to, flight, _dep_day, booked, dep)) in flights.into_iter().enumerate() {
        let dep_text = rfc5322_date(dep, Tz::Fixed(0));
        let text = format!(
            "Dear Jordan Lee,\n\nThank you for booking with SkyWays. Your booking reference is {code}.\n\nFlight {flight}: {from} to {to}\nDeparture: {dep_text}\nPassenger: Jordan Lee, seat {}{}\nBaggage: 1 checked bag, 23 kg\n\nYour e-ticket is attached. Online check-in opens 24 hours before departure.\n\nManage your booking: https://skyways.example.com/manage/{code}\n",
            g.rng.range(8, 42),
            ["A", "C", "D", "F"][i]
        );
        let ts = at_local(SKYWAYS, booked, 14, 3);
        let html = Html {
            preheader: Some(format!("Booking {code} confirmed. Have a great trip!")),
            logo: true,
            script: true,
            table: vec![
                vec![
                    "Flight".into(),
                    "From".into(),
                    "To".into(),
                    "Departure (UTC)".into(),
                ],
                vec![flight.into(), from.into(), to.into(), dep_text.clone()],
            ],
            links: vec![(
                "Manage booking".into(),
                format!("https://skyways.example.com/manage/{code}"),
            )],
            footer: Some("SkyWays Airlines. Please do not reply to this email.".into()),
            accent: "#003580",
        };
        let conf = g.add(
            Mail::new(
                SKYWAYS,
                &[JORDAN],
                &format!("Your flight confirmation – {from} ✈ {to}, booking {code}"),
                text,
                ts,
            )
            .alt(html.clone())
            .attach(named(
                pdf(&[
                    "SkyWays Airlines e-ticket",
                    &format!("Booking {code}"),
                    &format!("{flight} {from} - {to}"),
                ]),
                &format!("e-ticket-{code}.pdf"),
            ))
            .flagged(),
        );
        let _ = conf;
        let ck = Mail::new(
            SKYWAYS,
            &[JORDAN],
            &format!("Check in now for your flight to {to}"),
            format!("Hi Jordan,\n\nCheck-in for flight {flight} ({from} to {to}) is open. Check in now and download your boarding pass.\n\nBooking reference: {code}\n\nCheck in: https://skyways.example.com/checkin/{code}\n"),
            dep - 23 * 3600,
        )
        .html_only(Html { preheader: Some("Your boarding pass is one tap away".into()), logo: true, links: vec![("Check in".into(), format!("https://skyways.example.com/checkin/{code}"))], accent: "#003580", ..Html::default() });
        g.add(ck);
    }
    g.add(Mail::new(
        SKYWAYS,
        &[JORDAN],
        "Schedule change for booking M3TR8L",
        "Dear Jordan Lee,\n\nThe departure of flight SW 118 from Boston to Lisbon on June 16 has changed from 19:15 to 20:05 local time. No action is needed if the new time suits you.\n\nSkyWays Airlines\n".into(),
        utc(2023, 6, 2, 9, 0),
    ));

    let hotel = Mail::new(
        HOTEL,
        &[JORDAN],
        "Confirmation de réservation / Booking confirmation #HL-48213",
        t(r#"
            Bonjour Monsieur Lee,

            Nous avons le plaisir de confirmer votre réservation à l'Hôtel Lumière, 14 rue des Écoles, 75005 Paris.

            Arrivée : lundi 18 septembre 2023, à partir de 15 h
            Départ : dimanche 24 septembre 2023, avant 11 h
            Chambre : double supérieure, vue sur cour, petit-déjeuner inclus
            Total : 1 134,00 € (taxe de séjour en sus)

            Dear Mr Lee,

            We are pleased to confirm your stay at Hôtel Lumière from 18 to 24 September 2023: superior double room, breakfast included, €1,134.00 plus city tax. Our café on the ground floor serves breakfast from 7 am.

            À bientôt à Paris !
            La réception
        "#),
        utc(2023, 8, 21, 13, 12),
    )
    .alt(Html { logo: true, accent: "#8e6c3a", footer: Some("Hôtel Lumière, 14 rue des Écoles, 75005 Paris".into()), ..Html::default() });
    let hotel = g.add(hotel);
    let r = g.reply(hotel, JORDAN, "Bonjour,\n\nMerci beaucoup ! Would it be possible to check in early, around 11:00? My train arrives at 10:20.\n\nBest regards,\nJordan Lee\n");
    let r = g.add(r);
    let r2 = g.reply(r, HOTEL, "Bonjour Monsieur Lee,\n\nBien sûr : we will do our best to have your room ready by 11:00. You can leave your luggage with us in any case.\n\nCordialement,\nLa réception\n");
    g.add(r2);

    g.add(
        Mail::new(
            RAIL,
            &[JORDAN],
            "Ihre Buchungsbestätigung: Zürich HB → Paris Gare de Lyon",
            t(r#"
                Guten Tag Jordan Lee,

                vielen Dank für Ihre Buchung. Ihre Fahrkarte finden Sie im Anhang.

                Hinfahrt: Montag, 18. September 2023
                Zürich HB ab 06:34 – Paris Gare de Lyon an 10:20
                TGV Lyria 9202, Wagen 14, Platz 63 (Fenster)
                Preis: 89,00 CHF

                Bitte zeigen Sie die Fahrkarte zusammen mit einem amtlichen Ausweis vor.

                Gute Reise wünscht Ihnen
                Ihr RailEuropa-Team
            "#),
            utc(2023, 8, 30, 8, 41),
        )
        .alt(Html {
            logo: true,
            preheader: Some("Ihre Fahrkarte ist da".into()),
            accent: "#ec0016",
            ..Html::default()
        })
        .attach(named(
            pdf(&[
                "RailEuropa",
                "Fahrkarte / Ticket",
                "Zuerich HB - Paris Gare de Lyon",
                "18.09.2023 06:34",
            ]),
            "Fahrkarte_Zürich_Paris.pdf",
        )),
    );

    let visit = g.add(Mail::new(
        JORDAN,
        &[JOAO],
        "Visiting São Paulo in April",
        t(r#"
            Hi João,

            Good news: the trip is booked. I land at GRU on Friday, April 12, early in the morning, and I'm in São Paulo until the 19th. Could we plan the Juniper replica review for Monday and Tuesday?

            Also, any tips for a hotel near the office in Pinheiros?

            Jordan
        "#),
        at_local(JORDAN, day(2024, 3, 4), 10, 0),
    ));
    let r = g.reply(visit, JOAO, &t(r#"
        Bem-vindo a São Paulo! Monday and Tuesday are perfect.

        For hotels, try the one on Rua dos Pinheiros, five minutes from the office. And you have to try the pão de queijo at the café on the corner; it is the best in the city.

        Abraço,
        João
    "#));
    let r = g.add(r);
    let r2 = g.reply(
        r,
        JORDAN,
        "Obrigado! Booked it. Pão de queijo is first on my list.\n",
    );
    g.add(r2);

    let lisbon = g.add(
        Mail::new(
            JORDAN,
            &[MOM, DAN],
            "Lisbon trip itinerary",
            t(r#"
                Hi Mom, hi Dan,

                Here is the plan for Lisbon:

                - Fri June 16: fly Boston to Lisbon overnight (SW 118)
                - Sat June 17: arrive 08:40, apartment in Alfama
                - Sun June 18: Sintra day trip
                - Wed June 21: tram 28 and the Belém pastries
                - Sun June 25: fly home

                I put the flights in the attached calendar file so you can add them to your phones.

                Love,
                Jordan
            "#),
            at_local(JORDAN, day(2023, 5, 20), 19, 30),
        )
        .attach(ics(
            "lisbon-flights.ics",
            "lisbon-2023-sw118",
            "Flight SW 118 Boston - Lisbon",
            utc(2023, 6, 16, 23, 15),
            400,
            "Boston Logan, Terminal E",
            JORDAN,
        )),
    );
    let r = g.reply(lisbon, MOM, "This looks wonderful, sweetheart. I already bought new walking shoes for all those hills!\n\nMom\n");
    g.add(r);
}

/// Shipping notifications: shipped, out for delivery, delivered.
fn shipping(g: &mut Gen) {
    let items = [
        ("Noise-cancelling headphones, black", "$229.00"),
        ("Cast-iron skillet, 26 cm", "$39.90"),
        ("Picture book: Where the Wild Things Are", "$12.99"),
        ("Espresso tamper and knock box", "$34.50"),
        ("Garden hose reel with 30 m hose", "$64.00"),
        ("USB-C docking station", "$119.00"),
        ("Hiking boots, size 44", "$149.95"),
        ("Japanese chef's knife (gyuto, 21 cm)", "$98.00"),
        ("Wool blanket, forest green", "$75.00"),
        ("Board game: Ticket to Ride Europe", "$44.99"),
        ("Pour-over coffee kettle", "$52.00"),
        ("Rain jacket, navy, size M", "$89.00"),
    ];
    let carriers = ["UPS", "FedEx", "USPS", "DHL Express"];
    for (n, (item, price)) in items.iter().enumerate() {
        let order = format!(
            "{}-{:07}",
            100 + g.rng.range(0, 899),
            g.rng.range(0, 9_999_999)
        );
        let tracking = format!("PX{:010}", g.rng.next() % 10_000_000_000);
        let carrier = *g.rng.pick(&carriers);
        let ts = g.any_time(PARCELO);
        let eta = short_date(ts + 3 * 86_400, EASTERN);
        let table = vec![
            vec!["Item".to_string(), "Qty".to_string(), "Price".to_string()],
            vec![item.to_string(), "1".to_string(), price.to_string()],
        ];
        let html = Html {
            preheader: Some(format!(
                "Good news: order {order} is on its way. Estimated delivery {eta}."
            )),
            logo: true,
            script: n % 2 == 0,
            table,
            links: vec![(
                "Track your package".into(),
                format!("https://parcelo.example.net/track/{tracking}"),
            )],
            footer: Some(
                "Parcelo Inc. You are receiving this email because you placed an order.".into(),
            ),
            accent: "#2e7d32",
        };
        let text = format!(
            "Hi Jordan,\n\nYour order #{order} has shipped!\n\n{item} ({price})\n\nCarrier: {carrier}\nTracking number: {tracking}\nEstimated delivery: {eta}\n\nTrack your package: https://parcelo.example.net/track/{tracking}\n\nThanks for shopping with Parcelo.\n"
        );
        let shipped = Mail::new(
            PARCELO,
            &[JORDAN],
            &format!("Your order #{order} has shipped"),
            text,
            ts,
        );
        g.add(if n % 3 == 0 {
            shipped.html_only(html.clone())
        } else {
            shipped.alt(html.clone())
        });
        let out_ts = ts + 2 * 86_400 + g.rng.range(0, 3 * 3600);
        let out = Mail::new(
            PARCELO,
            &[JORDAN],
            "Out for delivery: your package arrives today",
            format!("Hi Jordan,\n\nYour package with {item} is out for delivery and should arrive today by 8 pm.\n\nTracking number: {tracking} ({carrier})\n"),
            out_ts,
        )
        .html_only(Html { preheader: Some("Arriving today".into()), logo: true, accent: "#2e7d32", links: vec![("See live map".into(), format!("https://parcelo.example.net/track/{tracking}/map"))], ..Html::default() });
        g.add(out);
        if n % 4 == 3 {
            g.add(Mail::new(
                PARCELO,
                &[JORDAN],
                &format!("Delivery delayed: order #{order}"),
                format!("Hi Jordan,\n\nWe're sorry: your package ({item}) is delayed because of weather conditions at the {carrier} hub. The new estimated delivery date is {}.\n", short_date(out_ts + 2 * 86_400, EASTERN)),
                out_ts + 5 * 3600,
            ).html_only(Html { preheader: Some("We're sorry for the delay".into()), logo: true, accent: "#2e7d32", ..Html::default() }));
        }
        let delivered_html = Html {
            logo: true,
            accent: "#2e7d32",
            footer: Some("Parcelo Inc.".into()),
            ..Html::default()
        };
        g.add(Mail::new(
            PARCELO,
            &[JORDAN],
            &format!("Delivered: {item}"),
            format!("Hi Jordan,\n\nYour package was delivered: {item}. It was left at the front door.\n\nNot right? Report a problem within 48 hours: https://parcelo.example.net/help/{order}\n"),
            out_ts + if n % 4 == 3 { 2 * 86_400 } else { 6 * 3600 },
        ).alt(delivered_html));
    }
}

/// Newsletters: a tech weekly, a gardening letter and a French café letter.
/// Their HTML has everything a cleaner must strip.
fn newsletters(g: &mut Gen) {
    let stories = [
        (
            "Rust 1.80 stabilises LazyCell",
            "The standard library finally has lazily initialised values without a crate. We look at what changes for your statics.",
        ),
        (
            "Passkeys, one year on",
            "Passkeys replaced passwords on three of the ten biggest sites. The recovery story is still messy, and that is where attackers go.",
        ),
        (
            "Why your SQLite is faster than your Postgres",
            "For a single-user app, an embedded database removes the network round trip. A benchmark and its caveats.",
        ),
        (
            "End-to-end encryption and search",
            "If the server cannot read your mail, it cannot search it either. On-device indexes are how the best clients solve this.",
        ),
        (
            "The quiet death of the cookie banner",
            "Browsers that block third-party cookies by default make half of all consent pop-ups pointless.",
        ),
        (
            "A field guide to memory-safe languages",
            "Governments now ask vendors for memory-safety road maps. What that means in practice.",
        ),
        (
            "Local-first software",
            "Apps that work offline and sync later are back in fashion: CRDTs, sync engines and their trade-offs.",
        ),
        (
            "Unicode normalisation for the rest of us",
            "Why café and café are not always the same string, and how search engines make them match.",
        ),
        (
            "The cost of a cold start",
            "Serverless functions got faster, but a 400 ms cold start still hurts checkout pages.",
        ),
        (
            "Inside a tiny language model",
            "We took apart a 100-million-parameter model to see what it learns first.",
        ),
        (
            "Postmortem culture that works",
            "Blameless postmortems only help if the action items get done. Three teams share their tracking.",
        ),
        (
            "Open-source funding in 2024",
            "Foundations, sponsorships and paid support: who actually pays the maintainers.",
        ),
    ];
    for issue in 0..22 {
        let n = 140 + issue;
        let ts = at_local(
            WEEKLYBYTE,
            START_DAY + 5 + issue * 32 + g.rng.range(0, 4),
            7,
            0,
        );
        let picked = g.rng.sample(&stories, 3);
        let mut text = format!(
            "THE WEEKLY BYTE, issue #{n}\n\nThis week: {}.\n\n",
            picked[0].0
        );
        for (title, blurb) in &picked {
            let _ = write!(
                text,
                "{title}\n{blurb}\nRead more: https://weeklybyte.example.org/{n}/{}\n\n",
                title
                    .to_lowercase()
                    .replace(|c: char| !c.is_ascii_alphanumeric(), "-")
            );
        }
        if issue % 5 == 2 {
            text.push_str("From the archive: our 2019 piece on why email is still the internet's identity layer.\n\n");
        }
        text.push_str("You are receiving this newsletter because you subscribed at weeklybyte.example.org. Unsubscribe: https://weeklybyte.example.org/unsubscribe\n");
        let html = Html {
            preheader: Some(format!("Issue #{n}: {} and more", picked[1].0)),
            script: true,
            logo: true,
            table: Vec::new(),
            links: vec![(
                "Read the issue online".into(),
                format!("https://weeklybyte.example.org/{n}"),
            )],
            footer: Some(
                "The Weekly Byte, 500 Market Street, San Francisco. Unsubscribe at any time."
                    .into(),
            ),
            accent: "#6a1b9a",
        };
        let mail = Mail::new(WEEKLYBYTE, &[JORDAN], &format!("The Weekly Byte #{n}: {}", picked[0].0), text, ts)
            .alt(html)
            .header("List-Id", "The Weekly Byte <weekly.weeklybyte.example.org>")
            .header("List-Unsubscribe", "<https://weeklybyte.example.org/unsubscribe>, <mailto:unsubscribe@weeklybyte.example.org>")
            .header("Precedence", "bulk");
        g.add(if issue % 4 == 0 {
            mail.unread(true)
        } else {
            mail
        });
    }

    let tips = [
        (
            "Spring is here: start your tomatoes indoors",
            "Sow tomato and pepper seeds six weeks before the last frost, on a sunny windowsill, and keep the soil moist but not wet.",
        ),
        (
            "Mulch now, thank yourself in August",
            "Five centimetres of straw or wood chips keep the soil cool and save a third of your watering.",
        ),
        (
            "The secret to sweeter strawberries",
            "Pick in the afternoon, when the sugars peak, and never wash them before storing.",
        ),
        (
            "Planting garlic in the fall",
            "Break the bulbs into cloves and plant them pointy end up, ten centimetres deep, before the ground freezes.",
        ),
        (
            "Saving seeds from your best plants",
            "Let a few beans dry on the vine and store them in paper envelopes in a cool, dark place.",
        ),
        (
            "Winter care for your fruit trees",
            "Prune on a dry day in late winter and wrap young trunks against hungry rabbits.",
        ),
        (
            "Herbs on a balcony",
            "Basil, parsley and chives grow happily in pots; rosemary and thyme like it dry.",
        ),
        (
            "Composting for beginners",
            "Mix greens and browns, keep it as moist as a wrung-out sponge, and turn it every two weeks.",
        ),
    ];
    for (i, (title, tip)) in tips.iter().enumerate() {
        let ts = at_local(
            GARDEN,
            day(2023, 3, 4) + i as i64 * 85 + g.rng.range(0, 10),
            6,
            30,
        );
        let text = format!(
            "Green Thumb Weekly\n\n{title}\n\n{tip}\n\nHappy gardening!\nThe Green Thumb team\n\nUnsubscribe: https://greenthumb.example.org/unsubscribe\n"
        );
        let html = Html {
            preheader: Some(format!("This week in the garden: {}", title.to_lowercase())),
            logo: true,
            script: i % 2 == 0,
            table: vec![
                vec!["Task".into(), "When".into()],
                vec!["Water deeply".into(), "Twice a week".into()],
                vec!["Check for slugs".into(), "After rain".into()],
            ],
            links: vec![(
                "Read on our blog".into(),
                format!("https://greenthumb.example.org/tips/{i}"),
            )],
            footer: Some("Green Thumb Weekly newsletter. Unsubscribe with one click.".into()),
            accent: "#558b2f",
        };
        let mail = Mail::new(GARDEN, &[JORDAN], &format!("🌱 {title}"), text, ts)
            .html_only(html)
            .header(
                "List-Unsubscribe",
                "<https://greenthumb.example.org/unsubscribe>",
            )
            .header("Precedence", "bulk");
        g.add(if i % 3 == 1 {
            mail.te(Te::Base64)
        } else {
            mail
        });
    }

    let lettres = [
        (
            "Le retour du café filtre",
            "Après des années d'espresso, le café filtre revient dans les cafés parisiens. Notre torréfacteur vous explique pourquoi une mouture moyenne et une eau à 93 °C changent tout.",
        ),
        (
            "Nos nouvelles pâtisseries d'automne",
            "Tarte aux figues, financiers à la noisette et, bien sûr, la crème brûlée de Mathilde, chaque week-end à partir de 9 h.",
        ),
        (
            "Atelier dégustation : les cafés d'Éthiopie",
            "Samedi prochain, découvrez trois cafés d'Éthiopie aux notes de jasmin et d'agrumes. Places limitées, réservation conseillée.",
        ),
        (
            "Le café des Arts fête ses dix ans",
            "Dix ans de cafés, de concerts et de rencontres : venez trinquer avec nous le 14 juin, la première boisson est offerte.",
        ),
    ];
    for (i, (title, text)) in lettres.iter().enumerate() {
        let ts = at_local(
            LECAFE,
            day(2023, 2, 10) + i as i64 * 170 + g.rng.range(0, 20),
            8,
            0,
        );
        let body = format!(
            "La Lettre du Café\n\n{title}\n\n{text}\n\nÀ très vite au café,\nL'équipe du Café des Arts\n\nSe désabonner : https://cafe-des-arts.example.net/desabonnement\n"
        );
        let html = Html {
            preheader: Some("Les nouvelles du Café des Arts".into()),
            logo: true,
            links: vec![(
                "Voir la lettre en ligne".into(),
                format!("https://cafe-des-arts.example.net/lettre/{i}"),
            )],
            footer: Some("Café des Arts, 3 place du Marché, Lyon".into()),
            accent: "#5d4037",
            ..Html::default()
        };
        let mail = Mail::new(
            LECAFE,
            &[JORDAN],
            &format!("La Lettre du Café : {title}"),
            body,
            ts,
        )
        .alt(html)
        .header(
            "List-Unsubscribe",
            "<https://cafe-des-arts.example.net/desabonnement>",
        );
        g.add(if i == 2 {
            mail.charset(Cs::Cp1252).q()
        } else {
            mail
        });
    }
}

/// Account security mail: password resets, sign-in alerts, codes.
fn security(g: &mut Gen) {
    let html = |pre: &str, label: &str, url: &str| Html {
        preheader: Some(pre.to_string()),
        logo: true,
        script: false,
        links: vec![(label.to_string(), url.to_string())],
        footer: Some(
            "Nimbus, Inc. This is an automated message about your account security.".into(),
        ),
        accent: "#00897b",
        ..Html::default()
    };
    for i in 0..4 {
        let ts = g.any_time(JORDAN);
        let token: String = (0..24)
            .map(|_| char::from(b"abcdefghijkmnpqrstuvwxyz23456789"[g.rng.below(32)]))
            .collect();
        let url = format!("https://accounts.example.com/reset?token={token}");
        let text = format!(
            "Hi Jordan,\n\nSomeone (hopefully you) asked to reset the password of your Nimbus account jordan.lee@example.org.\n\nReset your password: {url}\n\nThis link expires in 30 minutes. If you did not ask for a password reset, you can ignore this email; your password will not change.\n\nThe Nimbus team\n"
        );
        let mail = Mail::new(NIMBUS, &[JORDAN], "Reset your Nimbus password", text, ts).alt(html(
            "Your password reset link (expires in 30 minutes)",
            "Reset password",
            &url,
        ));
        g.add(if i == 3 { mail.unread(true) } else { mail });
    }
    let devices = [
        "Firefox on Windows",
        "Safari on iPhone",
        "Chrome on Android",
    ];
    for (i, d) in devices.iter().enumerate() {
        let ts = g.any_time(JORDAN);
        let place = ["Boston, United States", "São Paulo, Brazil", "Tokyo, Japan"][i];
        g.add(
            Mail::new(
                NIMBUS,
                &[JORDAN],
                "New sign-in to your Nimbus account",
                format!("Hi Jordan,\n\nYour account was just used to sign in on {d} near {place}.\n\nIf this was you, there is nothing to do. If not, change your password now and review your devices: https://accounts.example.com/security\n"),
                ts,
            )
            .alt(html(&format!("New sign-in on {d}"), "Review activity", "https://accounts.example.com/security")),
        );
    }
    for _ in 0..2 {
        let ts = g.any_time(JORDAN);
        let code = g.rng.range(100_000, 999_999);
        g.add(Mail::new(
            NIMBUS,
            &[JORDAN],
            &format!("Your Nimbus verification code: {code}"),
            format!("Your verification code is {code}. It expires in 10 minutes.\n\nNever share this code with anyone, including Nimbus support.\n"),
            ts,
        ).alt(html("Your code expires in 10 minutes", "Open Nimbus", "https://accounts.example.com/")));
    }
}

/// A recruiter's outreach that ends in a job offer.
fn job_offer(g: &mut Gen) {
    let first = g.add(Mail::new(
        PRIYA,
        &[JORDAN],
        "Senior Data Engineer role at Harbor Analytics",
        t(r#"
            Hi Jordan,

            I lead recruiting for the data platform team at Harbor Analytics. Your talk on zero-downtime migrations caught our CTO's attention, and we think you would be a great fit for our Senior Data Engineer role: Boston or remote, a team of eight, and a migration of our own coming up next year.

            Would you be open to a 30-minute call next week?

            Best,
            Priya Natarajan
            Talent Partner, Harbor Analytics
        "#),
        at_local(PRIYA, day(2024, 4, 22), 19, 5),
    ).alt(Html { accent: "#004d40", ..Html::default() }));
    let r = g.reply(first, JORDAN, "Hi Priya,\n\nThanks for reaching out. I'm happy with my current team, but the role sounds interesting. Thursday or Friday afternoon (Eastern) works for a call.\n\nJordan\n");
    let r = g.add(r);
    let interview_ts = utc(2024, 5, 14, 14, 0);
    let inv = g.reply(r, PRIYA, &t(r#"
        Great! I have booked Thursday at 14:00 Eastern for the call, and if it goes well, the panel interview would be on May 14 at 10:00 (four 45-minute conversations, lunch with the team included). The invitation for the panel is attached.

        Priya
    "#));
    g.add(inv.attach(ics(
        "interview.ics",
        "harbor-panel-2024-05-14",
        "Harbor Analytics panel interview",
        interview_ts,
        240,
        "Harbor Analytics, 200 Atlantic Ave, Boston",
        PRIYA,
    )));
    let offer = g.add(
        Mail::new(
            PRIYA,
            &[JORDAN],
            "Your offer from Harbor Analytics",
            t(r#"
                Hi Jordan,

                Congratulations! On behalf of everyone you met, I am delighted to offer you the position of Senior Data Engineer at Harbor Analytics.

                - Base salary: $185,000 per year
                - Equity: 12,000 stock options, four-year vesting
                - Start date: July 8, 2024 (flexible)
                - Remote-friendly, with the Boston office three days a month

                The offer letter and a summary of benefits are attached. The offer is valid until June 7. I am happy to answer any question, and the hiring manager would love to talk to you again before you decide.

                Warmly,
                Priya
            "#),
            at_local(PRIYA, day(2024, 5, 24), 20, 15),
        )
        .alt(Html { accent: "#004d40", logo: true, footer: Some("Harbor Analytics, 200 Atlantic Ave, Boston. Confidential.".into()), ..Html::default() })
        .attach(docx("Offer_Letter_Jordan_Lee.docx", "Harbor Analytics offer letter"))
        .attach(named(pdf(&["Harbor Analytics", "Benefits summary 2024", "Health, dental, vision", "401(k) with 4% match", "20 days paid time off"]), "Benefits_Summary_2024.pdf"))
        .flagged(),
    );
    let q = g.reply(offer, JORDAN, "Hi Priya,\n\nThank you, this is exciting! Two questions before I decide: could the start date be August 5, so that I can finish the Atlas launch properly, and is the equity grant refreshed yearly?\n\nBest,\nJordan\n");
    let q = g.add(q);
    let a = g.reply(q, PRIYA, "Hi Jordan,\n\nAugust 5 is fine, and yes: refresh grants are reviewed every year with the performance cycle. I attached the updated offer letter with the new start date.\n\nPriya\n");
    let a = g.add(
        a.attach(docx(
            "Offer_Letter_Jordan_Lee_v2.docx",
            "Harbor Analytics offer letter, start August 5",
        ))
        .flagged(),
    );
    let yes = g.reply(a, JORDAN, "Hi Priya,\n\nI'm happy to accept. Signed letter attached. See you on August 5!\n\nJordan\n");
    g.add(yes.attach(named(
        pdf(&["Offer letter, signed", "Jordan Lee"]),
        "Offer_Letter_signed.pdf",
    )));
    let news = g.add(Mail::new(
        JORDAN,
        &[MOM, DAN],
        "Big news: I got the job!",
        "Hi Mom, hi Dan,\n\nI just accepted the offer from Harbor Analytics: senior data engineer, starting August 5. Mostly remote, so nothing changes for Thanksgiving. Dinner on me next time you're in Boston!\n\nJordan\n".into(),
        at_local(JORDAN, day(2024, 5, 29), 18, 40),
    ));
    let r = g.reply(
        news,
        MOM,
        "Oh honey, congratulations!!! Dad would have been so proud. Call me tonight?\n\nMom\n",
    );
    g.add(r);
    let r = g.reply(news, DAN, "Congrats bro! Knew you'd get it.\n");
    g.add(r);
}

/// Family: photos, birthdays, holidays.
fn family(g: &mut Gen) {
    let thanksgiving = g.add(
        Mail::new(
            MOM,
            &[JORDAN, DAN],
            "Photos from Thanksgiving",
            "Hi kids,\n\nHere are the family photos from Thanksgiving. The one of Grandma with the pumpkin pie is my favorite. Dan, you were blinking in all of them, sorry!\n\nLove,\nMom\n".into(),
            at_local(MOM, day(2023, 11, 25), 20, 0),
        )
        .attach(jpg("IMG_4021.jpg", "Thanksgiving table"))
        .attach(jpg("IMG_4025.jpg", "Grandma with the pumpkin pie"))
        .attach(jpg("IMG_4031.jpg", "family photo on the porch")),
    );
    let r = g.reply(
        thanksgiving,
        DAN,
        "Ha, I blink in every photo since 1998. Great pictures, Mom!\n",
    );
    g.add(r);
    let r = g.reply(
        thanksgiving,
        JORDAN,
        "Love these! Can you send the porch one in full resolution? I want to print it.\n",
    );
    g.add(r);

    let beach = g.add(
        Mail::new(
            DAN,
            &[JORDAN, MOM],
            "Beach photos from Cape Cod",
            "Finally sorted the photos from the Cape. Lily built the biggest sandcastle on the beach, and Max saw his first seal!\n\nDan\n".into(),
            at_local(DAN, day(2023, 8, 14), 21, 10),
        )
        .attach(jpg("cape_cod_sandcastle.jpg", "sandcastle"))
        .attach(jpg("cape_cod_seal.jpg", "a seal at Race Point")),
    );
    let r = g.reply(
        beach,
        MOM,
        "My grandchildren are the cutest. That seal looks like your uncle Frank.\n",
    );
    g.add(r);

    let bday = g.add(Mail::new(
        MOM,
        &[JORDAN, DAN],
        "Grandma's 90th birthday – save the date",
        "Hi both,\n\nGrandma turns 90 on April 6! We are having a party at the house on Saturday, April 6 from 2 pm. Aunt Ruth is flying in from Denver.\n\nPlease tell me by March 15 if you can make it, and no presents, she says (bring flowers).\n\nMom\n".into(),
        at_local(MOM, day(2024, 2, 3), 10, 15),
    ).flagged());
    let r = g.reply(
        bday,
        JORDAN,
        "Wouldn't miss it. I'll fly in on Friday evening.\n",
    );
    g.add(r);
    let r = g.reply(
        bday,
        DAN,
        "We'll drive down with the kids. Lily is making a card.\n",
    );
    g.add(r);
    let party = g.add(
        Mail::new(
            MOM,
            &[JORDAN, DAN],
            "Photos from Grandma's party",
            "What a day. Grandma danced with every single one of us. Photos attached; more on the shared album.\n\nMom\n".into(),
            at_local(MOM, day(2024, 4, 8), 19, 45),
        )
        .attach(jpg("grandma_90_cake.jpg", "the cake with 90 candles"))
        .attach(jpg("grandma_90_family.jpg", "family photo with Grandma"))
        .attach(jpg("grandma_90_dance.jpg", "Grandma dancing")),
    );
    let r = g.reply(
        party,
        JORDAN,
        "These are perfect. Framing the family one for her.\n",
    );
    g.add(r);

    g.add(
        Mail::new(
            JORDAN,
            &[MOM, DAN],
            "Lisbon family photos",
            "Here are my favourite photos from Lisbon: the view from the castle, Mom on tram 28, and the pastéis de nata we ate every single day.\n".into(),
            at_local(JORDAN, day(2023, 6, 27), 20, 30),
        )
        .attach(jpg("lisbon_castle_view.jpg", "view from the castle"))
        .attach(jpg("lisbon_tram28.jpg", "Mom on tram 28"))
        .attach(jpg("pasteis_de_nata.jpg", "pastéis de nata")),
    );
    g.add(
        Mail::new(
            DAN,
            &[JORDAN, MOM],
            "Family photos for the calendar",
            "Jenna is making the family calendar again this year. Send her your best photo of each season by December 1, please!\n\nHere are ours.\n\nDan\n".into(),
            at_local(DAN, day(2024, 11, 17), 20, 0),
        )
        .attach(jpg("calendar_winter.jpg", "kids in the snow"))
        .attach(jpg("calendar_summer.jpg", "lake house dock")),
    );
    for (y, text) in [
        (
            2023,
            "Hi kids,\n\nChristmas plans: Christmas Eve dinner at my place at 6, and Christmas Day brunch at Dan's. Jordan, your old room is ready. Let me know what you want for dinner; I'm thinking roast chicken and the usual pies.\n\nMom\n",
        ),
        (
            2024,
            "Hi kids,\n\nChristmas plans for this year: everybody at Dan's for Christmas Eve (Jenna insists), and brunch at my place on the 25th. I'll make Grandma's apple pie. Jordan, when does your flight land?\n\nMom\n",
        ),
    ] {
        let c = g.add(Mail::new(
            MOM,
            &[JORDAN, DAN],
            "Christmas plans",
            text.into(),
            at_local(MOM, day(y, 12, 2), 11, 0),
        ));
        let r = g.reply(
            c,
            JORDAN,
            "Sounds perfect. I land on the 23rd at 4 pm, no need to pick me up.\n",
        );
        g.add(r);
    }
}

/// Recipes, in four languages.
fn recipes(g: &mut Gen) {
    g.add(Mail::new(
        MOM,
        &[JORDAN],
        "Grandma's apple pie recipe",
        t(r#"
            Hi sweetheart,

            Here is Grandma's apple pie recipe, as you asked. Don't tell Dan.

            Crust:
            - 2 1/2 cups flour, 1 teaspoon salt, 1 tablespoon sugar
            - 1 cup very cold butter, in cubes
            - 6 to 8 tablespoons ice water

            Filling:
            - 6 apples (half Granny Smith, half Honeycrisp), peeled and sliced
            - 3/4 cup sugar, 2 tablespoons flour, 1 teaspoon cinnamon, a pinch of nutmeg
            - juice of half a lemon

            Rub the butter into the flour until it looks like peas, add the water a little at a time, and chill the dough for an hour. Fill, cover, cut a few slits, brush with milk. Bake at 425°F for 15 minutes, then 350°F for 40 more, until the juice bubbles.

            The secret, Grandma says, is to let it cool for at least two hours. Nobody ever manages.

            Love,
            Mom
        "#),
        at_local(MOM, day(2023, 10, 8), 16, 20),
    ).flagged());

    g.add(Mail::new(
        AMELIE,
        &[JORDAN],
        "Recette : crème brûlée (comme promis)",
        t(r#"
            Bonjour Jordan,

            Comme promis après notre dîner à Paris, voici la recette de la crème brûlée de ma grand-mère.

            Ingrédients (6 personnes) :
            - 50 cl de crème entière
            - 6 jaunes d'œufs
            - 100 g de sucre, plus un peu de cassonade pour caraméliser
            - 1 gousse de vanille

            Faire chauffer la crème avec la vanille fendue. Fouetter les jaunes avec le sucre sans les faire mousser, puis verser la crème chaude petit à petit. Cuire au four à 100 °C pendant une heure, laisser refroidir puis réserver au frais une nuit.

            Au moment de servir, saupoudrer de cassonade et caraméliser au chalumeau. Avec un café bien serré, c'est parfait.

            Bises,
            Amélie
        "#),
        at_local(AMELIE, day(2023, 10, 2), 21, 0),
    ));

    g.add(
        Mail::new(
            SOFIA,
            &[JORDAN],
            "Receta de la paella de mi abuela",
            t(r#"
                ¡Hola Jordan!

                Aquí tienes la receta de la paella valenciana de mi abuela, la que comimos en Madrid.

                Ingredientes para 4 personas:
                - 400 g de arroz bomba
                - 1 pollo troceado y medio conejo
                - 200 g de judías verdes y garrofón
                - azafrán, pimentón dulce, tomate rallado y aceite de oliva

                Sofríe la carne a fuego fuerte, añade las verduras y el tomate, luego el pimentón y el agua. Cuando hierva, echa el azafrán y el arroz, y ya no se remueve más. Dieciocho minutos, y los últimos dos a fuego fuerte para el socarrat.

                ¡Que aproveche!
                Sofía
            "#),
            at_local(SOFIA, day(2024, 7, 21), 13, 30),
        )
        .te(Te::Base64),
    );

    g.add(
        Mail::new(
            YUKI,
            &[JORDAN],
            "肉じゃがのレシピ",
            t(r#"
                ジョーダンさん

                先日お話しした肉じゃがのレシピです。

                材料（4人分）：
                - 牛肉の薄切り 200g
                - じゃがいも 4個
                - 玉ねぎ 1個、にんじん 1本
                - しょうゆ 大さじ4、みりん 大さじ3、砂糖 大さじ2

                鍋で牛肉を炒めて、野菜を加えます。水とだしを入れて、調味料を加え、落とし蓋をして20分ほど煮込みます。一晩置くと、もっとおいしくなります。

                東京に来たら、ぜひ一緒に作りましょう！

                田中 由紀
            "#),
            at_local(YUKI, day(2024, 9, 29), 20, 0),
        ),
    );
}

/// Calendar invitations with `.ics` attachments.
fn invitations(g: &mut Gen) {
    for (i, (y, mo)) in [(2023, 3), (2023, 9), (2024, 3), (2024, 9)]
        .into_iter()
        .enumerate()
    {
        let start = utc(y, mo, 10 + i as i64, 14, 30);
        let sent = at_local(DENTAL, day(y, mo, 10 + i as i64) - 14, 10, 0);
        let date = short_date(start, EASTERN);
        g.add(
            Mail::new(
                DENTAL,
                &[JORDAN],
                &format!("Appointment reminder: dental cleaning on {date}"),
                format!("Hello Jordan,\n\nThis is a reminder of your appointment with Dr. Patel for a dental cleaning on {date} at 10:30 am.\n\nPlease arrive ten minutes early. To reschedule, call (617) 555-0142 at least 24 hours ahead.\n\nBright Smile Dental\n"),
                sent,
            )
            .alt(Html { logo: true, accent: "#0277bd", links: vec![("Confirm appointment".into(), "https://brightsmile.example.com/confirm".into())], ..Html::default() })
            .attach(ics("appointment.ics", &format!("dental-{y}-{mo}"), "Dental cleaning, Dr. Patel", start, 45, "Bright Smile Dental, 88 Beacon St, Boston", DENTAL)),
        );
    }
    for (i, d) in [
        day(2023, 3, 16),
        day(2023, 7, 20),
        day(2024, 1, 18),
        day(2024, 10, 17),
    ]
    .into_iter()
    .enumerate()
    {
        let book = [
            "Klara and the Sun",
            "The Naïve and the Sentimental Novelist",
            "Tomorrow, and Tomorrow, and Tomorrow",
            "The Covenant of Water",
        ][i];
        let start = d * 86_400 + 23 * 3600;
        let sent = at_local(TOM, d - 10, 18, 0);
        let inv = g.add(
            Mail::new(
                TOM,
                &[JORDAN, ALICE],
                &format!("Invitation: Book club – {book}"),
                format!("Hi both,\n\nNext book club is at my place on {} at 7 pm. We are discussing \"{book}\". I'll make chili; bring something to drink.\n\nTom\n", short_date(start, EASTERN)),
                sent,
            )
            .attach(ics("bookclub.ics", &format!("bookclub-{i}"), &format!("Book club: {book}"), start, 150, "Tom's place, 41 Elm Street", TOM)),
        );
        if i % 2 == 1 {
            let r = g.reply(
                inv,
                ALICE,
                "I'm in! Halfway through the book, no spoilers please.\n\nAlice\n",
            );
            g.add(r);
        }
    }
}

/// Colleagues and friends writing in their own languages.
fn international(g: &mut Gen) {
    // German: Jürgen, translator in Munich.
    let angebot = g.add(Mail::new(
        JUERGEN,
        &[JORDAN],
        "Übersetzung der Produktseiten – Angebot",
        t(r#"
            Hallo Jordan,

            vielen Dank für deine Anfrage. Für die Übersetzung der zwölf Produktseiten ins Deutsche (ca. 18.000 Wörter) kann ich dir folgendes Angebot machen:

            - Übersetzung und Lektorat: 0,10 € pro Wort
            - Terminologieliste für Atlas: kostenlos
            - Lieferung: in drei Wochen ab Auftrag

            Bei Fragen ruf mich gerne an. Ich freue mich auf die Zusammenarbeit!

            Viele Grüße
            Jürgen Müller
        "#),
        at_local(JUERGEN, day(2024, 2, 20), 10, 30),
    ).q());
    let r = g.reply(angebot, JORDAN, "Hallo Jürgen,\n\nDanke! The offer looks good, let's go ahead. Amélie will send you the glossary this week.\n\nViele Grüße\nJordan\n");
    g.add(r);
    g.add(
        Mail::new(
            JUERGEN,
            &[JORDAN, AMELIE],
            "Besprechung am Donnerstag verschoben",
            t(r#"
                Hallo zusammen,

                leider muss ich unsere Besprechung am Donnerstag verschieben: Ich habe einen Arzttermin, der sich nicht ändern lässt. Würde euch Freitag um 15 Uhr passen?

                Schöne Grüße
                Jürgen
            "#),
            at_local(JUERGEN, day(2024, 3, 19), 8, 20),
        )
        .charset(Cs::Latin1),
    );
    g.add(
        Mail::new(
            JUERGEN,
            &[JORDAN],
            "Frohe Weihnachten und einen guten Rutsch!",
            t(r#"
                Lieber Jordan,

                ich wünsche dir und deiner Familie frohe Weihnachten und einen guten Rutsch ins neue Jahr! Danke für die schöne Zusammenarbeit in diesem Jahr; ich freue mich schon auf die nächsten Übersetzungen.

                Herzliche Grüße aus dem verschneiten München
                Jürgen
            "#),
            at_local(JUERGEN, day(2023, 12, 22), 17, 0),
        )
        .charset(Cs::Latin1)
        .te(Te::EightBit),
    );
    g.add(
        Mail::new(
            JUERGEN,
            &[JORDAN],
            "Grüße aus München – Fotos vom Oktoberfest",
            "Servus Jordan,\n\nwie versprochen ein paar Fotos vom Oktoberfest. Nächstes Jahr kommst du mit, keine Ausreden!\n\nJürgen\n".into(),
            at_local(JUERGEN, day(2024, 9, 30), 12, 0),
        )
        .attach(jpg("Oktoberfest_Zelt.jpg", "Oktoberfest tent"))
        .attach(jpg("Brezn_und_Maß.jpg", "pretzel and beer")),
    );

    // French: Amélie, in the Paris office.
    g.add(
        Mail::new(
            AMELIE,
            &[JORDAN, ALICE],
            "Réunion de lancement du projet Atlas à Paris",
            t(r#"
                Bonjour à tous,

                Pour la réunion de lancement du projet Atlas côté Paris, je propose jeudi 15 février à 10 h, salle Montmartre. L'équipe de traduction sera présente, ainsi que Jürgen en visio.

                Ordre du jour :
                - présentation du projet et du calendrier
                - processus de traduction et glossaire
                - relecture des pages françaises

                Merci de me confirmer votre présence.

                Amélie
            "#),
            at_local(AMELIE, day(2024, 2, 8), 9, 40),
        )
        .alt(plain_html()),
    );
    let naive = g.add(
        Mail::new(
            AMELIE,
            &[JORDAN],
            "Une question un peu naïve sur le CMS",
            t(r#"
                Salut Jordan,

                Question peut-être naïve : est-ce que le nouveau CMS gère les « brouillons » par langue ? Aujourd’hui, quand l’équipe anglaise publie une page, la version française part en ligne à moitié traduite… C’est l’œuvre de trois semaines de retard, à chaque fois.

                Merci d’avance,
                Amélie
            "#),
            at_local(AMELIE, day(2024, 3, 6), 14, 10),
        )
        .charset(Cs::Cp1252),
    );
    let r = g.reply(naive, JORDAN, "Not naïve at all! Yes: each locale has its own draft, and a page goes live per language. I'll show you on Thursday.\n\nJordan\n");
    g.add(r);
    g.add(Mail::new(
        AMELIE,
        &[JORDAN, ALICE, CARLA],
        "Le café près du bureau a rouvert !",
        "Bonne nouvelle pour vos prochaines visites à Paris : le petit café de la rue Oberkampf a rouvert, avec une nouvelle terrasse. Leur café crème est toujours aussi bon, et le croque-monsieur est délicieux.\n\nOn y va ensemble la prochaine fois ?\n\nAmélie\n".into(),
        at_local(AMELIE, day(2024, 5, 13), 12, 45),
    ));

    // Spanish: Sofía, translation agency in Madrid.
    let reunion = g.add(Mail::new(
        SOFIA,
        &[JORDAN],
        "Reunión del lunes: presupuesto de traducción",
        t(r#"
            Hola Jordan:

            Para la reunión del lunes te resumo nuestro presupuesto para las páginas en español:

            - traducción y revisión: 0,09 € por palabra
            - adaptación para México y Argentina: 15 % adicional
            - entrega: dos semanas y media

            ¿Te parece bien si empezamos con las páginas de producto y dejamos el blog para después?

            Saludos,
            Sofía
        "#),
        at_local(SOFIA, day(2024, 2, 23), 11, 0),
    ));
    let r = g.reply(reunion, JORDAN, "¡Perfecto, Sofía! Product pages first, the blog can wait until after the launch.\n\nJordan\n");
    g.add(r);
    g.add(Mail::new(
        SOFIA,
        &[JORDAN, JOAO],
        "Viaje a São Paulo en abril",
        "Hola a los dos:\n\n¡Yo también voy a São Paulo en abril! Llego el día 15 para la conferencia de traducción. ¿Cenamos juntos el martes? João, tú conoces los mejores sitios.\n\nUn abrazo,\nSofía\n".into(),
        at_local(SOFIA, day(2024, 3, 20), 18, 0),
    ));

    // Portuguese: João in São Paulo.
    g.add(
        Mail::new(
            JOAO,
            &[JORDAN, SOFIA],
            "Fotos do churrasco",
            "Oi pessoal,\n\nAs fotos do churrasco de terça-feira em São Paulo! Foi muito bom ter vocês aqui. Voltem logo.\n\nAbraço,\nJoão\n".into(),
            at_local(JOAO, day(2024, 4, 18), 22, 0),
        )
        .attach(jpg("churrasco_pinheiros.jpg", "churrasco in Pinheiros")),
    );

    // Japanese: Yuki, designer in the Tokyo office. One in ISO-2022-JP, as
    // many Japanese clients still send.
    g.add(
        Mail::new(
            YUKI,
            &[JORDAN],
            "来週の打ち合わせについて",
            t(r#"
                ジョーダンさん

                お疲れさまです。田中です。

                来週の打ち合わせは水曜日の午後三時からでお願いします。
                場所は東京オフィスの第二会議室です。
                Heronアプリの新しいデザイン案について話し合いたいと思います。
                資料は前日までにお送りします。

                よろしくお願いいたします。

                田中 由紀
            "#),
            at_local(YUKI, day(2023, 6, 2), 10, 0),
        )
        .charset(Cs::Iso2022Jp),
    );
    let trip = g.add(Mail::new(
        YUKI,
        &[JORDAN],
        "東京出張のスケジュール",
        t(r#"
            ジョーダンさん

            東京出張のスケジュールをお送りします。

            10月15日（火）：オフィス見学、チームとの顔合わせ
            10月16日（水）：Heronアプリのデザインレビュー
            10月17日（木）：お客様訪問（渋谷）
            10月18日（金）：振り返り、夜は懇親会

            ホテルは新橋の駅前を予約しました。何かあれば教えてください。

            田中
        "#),
        at_local(YUKI, day(2024, 9, 20), 11, 0),
    ));
    let r = g.reply(trip, JORDAN, "田中さん、ありがとうございます！ The schedule looks great. I'm looking forward to the design review, and to the party on Friday.\n\nJordan\n");
    g.add(r);
    g.add(
        Mail::new(
            YUKI,
            &[JORDAN, BOB],
            "Heron アプリのテスト結果",
            "ジョーダンさん、ボブさん\n\nHeron アプリのユーザーテストの結果です。\n\n8人中7人が、オフラインでも作業報告を問題なく送信できました。署名の画面が小さいという意見が3件ありました。詳しくは添付の資料をご覧ください。\n\n田中\n".into(),
            at_local(YUKI, day(2023, 9, 8), 15, 0),
        )
        .te(Te::QuotedPrintable)
        .attach(named(pdf(&["Heron usability test", "8 participants", "7 of 8 sent reports offline"]), "Heron_テスト結果.pdf")),
    );

    // Chinese: Wei, backend lead in Shanghai.
    g.add(
        Mail::new(
            WEI,
            &[JORDAN, BOB],
            "周五项目会议纪要",
            t(r#"
            Jordan、Bob：

            以下是周五项目会议的纪要：

            - 同步接口的第二版已经完成，下周一部署到测试环境
            - 离线冲突的处理方式：以服务器时间为准，并通知用户
            - 照片上传失败的问题已找到原因，是重试队列没有持久化

            下次会议时间：下周五上午十点（上海时间）。

            张伟
        "#),
            at_local(WEI, day(2023, 6, 16), 18, 0),
        )
        .attach(docx("会议纪要_0616.docx", "Heron meeting notes")),
    );
    g.add(
        Mail::new(
            WEI,
            &[JORDAN, BOB, MINJUN, YUKI],
            "春节快乐！",
            "各位同事：\n\n祝大家春节快乐，龙年大吉！附上一张我们家年夜饭的照片。春节期间上海办公室放假一周，二月十八日恢复上班。\n\n张伟\n".into(),
            at_local(WEI, day(2024, 2, 9), 20, 0),
        )
        .attach(jpg("年夜饭.jpg", "New Year's Eve dinner")),
    );
    g.add(
        Mail::new(
            WEI,
            &[JORDAN],
            "上海办公室的网络问题",
            "Jordan，你好：\n\n这两天上海办公室访问测试服务器特别慢，下载一个构建包需要二十分钟。我怀疑是跨境线路的问题。能不能在新加坡区域也部署一份构建缓存？\n\n谢谢！\n张伟\n".into(),
            at_local(WEI, day(2023, 7, 25), 10, 30),
        )
        .te(Te::QuotedPrintable),
    );
    let heron_cn = g.add(Mail::new(
        WEI,
        &[JORDAN, BOB],
        "Heron 测试版本反馈",
        "Jordan、Bob：\n\n测试版本 2.1 在华为手机上启动时会闪退，日志已上传到问题跟踪系统。其他机型一切正常。\n\n张伟\n".into(),
        at_local(WEI, day(2023, 10, 12), 14, 0),
    ));
    let r = g.reply(heron_cn, BOB, "Thanks Wei, reproduced on the emulator. It's the new notification channel code; fix in 2.1.1 tomorrow.\n\nBob\n");
    g.add(r);

    // Korean: Min-jun, Android developer in Seoul.
    g.add(Mail::new(
        MINJUN,
        &[JORDAN, BOB],
        "다음 주 회의 일정 안내",
        "안녕하세요, Jordan 님, Bob 님.\n\n다음 주 회의는 목요일 오전 9시(서울 시간)에 진행하겠습니다. 안드로이드 빌드의 배터리 사용량 개선 결과를 공유드리겠습니다.\n\n감사합니다.\n김민준 드림\n".into(),
        at_local(MINJUN, day(2023, 8, 3), 17, 0),
    ));
    g.add(Mail::new(
        MINJUN,
        &[JORDAN],
        "서울 출장 후기",
        "Jordan 님,\n\n지난주 서울 방문 감사했습니다! 함께 먹은 삼겹살과 광장시장의 빈대떡이 아직도 생각나네요. 다음에는 부산에도 꼭 같이 가요.\n\n민준\n".into(),
        at_local(MINJUN, day(2024, 10, 28), 19, 0),
    ));
    g.add(
        Mail::new(
            MINJUN,
            &[JORDAN, BOB, WEI, YUKI],
            "추석 잘 보내세요",
            "팀원 여러분,\n\n즐거운 추석 연휴 보내세요! 저는 가족과 함께 부산에 다녀올 예정입니다. 연휴 동안에는 답장이 늦을 수 있습니다.\n\n김민준\n".into(),
            at_local(MINJUN, day(2024, 9, 13), 16, 0),
        )
        .te(Te::QuotedPrintable),
    );

    // Russian: Dmitri, database engineer.
    g.add(Mail::new(
        DMITRI,
        &[JORDAN, ELENI],
        "План миграции Juniper: этапы и сроки",
        t(r#"
            Джордан, Елена, привет!

            Предлагаю такой план миграции:

            - сентябрь: инвентаризация таблиц и резервное копирование
            - октябрь: репетиция отката и нагрузочное тестирование
            - ноябрь: переключение в ночь с пятницы на субботу

            Главный риск: размер базы (2,3 ТБ). Полное восстановление из резервной копии занимает около сорока минут.

            Дмитрий
        "#),
        at_local(DMITRI, day(2023, 9, 6), 11, 0),
    ));
    g.add(
        Mail::new(
            DMITRI,
            &[JORDAN],
            "Отчёт о тестировании резервного копирования",
            "Джордан,\n\nрезервное копирование проверено: все 410 таблиц восстановлены, контрольные суммы совпадают. Отчёт во вложении.\n\nДмитрий\n".into(),
            at_local(DMITRI, day(2023, 10, 25), 16, 0),
        )
        .attach(named(pdf(&["Juniper backup test report", "410 tables restored", "All checksums match"]), "Otchet_rezervnoe_kopirovanie.pdf")),
    );
    g.add(Mail::new(
        DMITRI,
        &[JORDAN, ELENI, JOAO],
        "С Новым годом!",
        "Друзья, с Новым годом! Спасибо за отличную работу над проектом Juniper. Пусть в новом году будет меньше ночных переключений и больше отпусков.\n\nДмитрий\n".into(),
        at_local(DMITRI, day(2023, 12, 31), 15, 0),
    ));

    // Greek: Eleni, application owner in Athens.
    g.add(Mail::new(
        ELENI,
        &[JORDAN, DMITRI],
        "Συνάντηση για το έργο Juniper",
        "Γεια σας,\n\nΠροτείνω μια σύντομη συνάντηση την Τετάρτη στις 16:00 (ώρα Αθήνας) για να ελέγξουμε τη λίστα των εφαρμογών πριν από τη μετάβαση. Δύο εφαρμογές έχουν ακόμα προγραμματισμένες εργασίες χωρίς τεκμηρίωση.\n\nΕλένη\n".into(),
        at_local(ELENI, day(2023, 10, 3), 10, 0),
    ));
    g.add(
        Mail::new(
            ELENI,
            &[JORDAN],
            "Φωτογραφίες από τη Σαντορίνη",
            "Jordan,\n\nΌπως σου υποσχέθηκα, μερικές φωτογραφίες από τις διακοπές μας στη Σαντορίνη. Το ηλιοβασίλεμα στην Οία ήταν απίστευτο!\n\nΕλένη\n".into(),
            at_local(ELENI, day(2024, 8, 26), 21, 0),
        )
        .attach(jpg("santorini_oia.jpg", "sunset in Oia")),
    );
    g.add(
        Mail::new(
            ELENI,
            &[JORDAN],
            "Ευχαριστώ για τη βοήθεια!",
            "Jordan, ευχαριστώ πολύ για τη βοήθεια με τη μετάβαση της βάσης δεδομένων. Χωρίς εσένα θα ήμασταν ακόμα στο παλιό κέντρο δεδομένων!\n\nΕλένη\n".into(),
            at_local(ELENI, day(2023, 11, 20), 9, 30),
        )
        .te(Te::QuotedPrintable),
    );
}

/// Everyday mail: friends, the bank, code reviews, small talk at work.
fn everyday(g: &mut Gen) {
    let pick = g.add(Mail::new(
        TOM,
        &[JORDAN, ALICE],
        "Book club: next pick?",
        t(r#"
            Hey both,

            Time to choose the next book. My shortlist:

            - The Naïve and the Sentimental Novelist (Pamuk), short and about reading itself
            - Demon Copperhead (Kingsolver)
            - Project Hail Mary (Weir), for something lighter

            From what I've read, the Pamuk is a good one to argue about. Votes by Sunday?

            Tom
        "#),
        at_local(TOM, day(2023, 2, 20), 20, 0),
    ));
    let r = g.reply(
        pick,
        ALICE,
        "Project Hail Mary, please. I need something fun after this quarter.\n\nAlice\n",
    );
    let a = g.add(r);
    let r = g.reply(
        pick,
        JORDAN,
        "I vote for the Pamuk. Naive or sentimental, we'll find out which one I am.\n",
    );
    g.add(r);
    let r = g.reply(
        a,
        TOM,
        "Tie-breaker: my vote goes to the Pamuk. Sorry Alice, Hail Mary next time, promise.\n",
    );
    g.add(r);

    for (i, d) in [
        day(2023, 4, 12),
        day(2023, 11, 8),
        day(2024, 5, 15),
        day(2024, 12, 4),
    ]
    .into_iter()
    .enumerate()
    {
        let lunch = g.add(Mail::new(
            TOM,
            &[JORDAN],
            "Lunch on Friday?",
            ["Lunch on Friday? The new ramen place on Hanover Street has a line, but it's worth it.\n\nTom\n",
             "Lunch Friday? Tacos or the café with the good sandwiches, your call.\n\nTom\n",
             "Friday lunch? I owe you one for helping with the move.\n\nTom\n",
             "Last lunch before the holidays, Friday? My treat.\n\nTom\n"][i]
                .into(),
            at_local(TOM, d, 11, 20),
        ));
        let r = g.reply(
            lunch,
            JORDAN,
            [
                "Yes! 12:30 at the door.\n",
                "Café, definitely. 12:15?\n",
                "Deal. Noon?\n",
                "Always. See you at 12.\n",
            ][i],
        );
        g.add(r);
    }

    for (i, (y, m)) in [
        (2023, 2),
        (2023, 5),
        (2023, 8),
        (2023, 11),
        (2024, 2),
        (2024, 5),
        (2024, 8),
        (2024, 11),
    ]
    .into_iter()
    .enumerate()
    {
        let month = MONTHS[(m - 1) as usize];
        let mail = Mail::new(
            BANK,
            &[JORDAN],
            &format!("Your {month} {y} statement is ready"),
            format!("Hello Jordan,\n\nYour statement for checking account ending in 0917 ({month} {y}) is ready to view in online banking.\n\nFor your security, we never send statements as attachments and never ask for your password by email.\n\nHarborview Bank\n"),
            at_local(BANK, day(y, m, 3), 5, 0),
        )
        .alt(Html {
            preheader: Some("Your statement is available in online banking".into()),
            logo: true,
            script: i % 2 == 1,
            links: vec![("View statement".into(), "https://harborview-bank.example.com/statements".into())],
            footer: Some("Harborview Bank, Member FDIC. Do not reply to this email.".into()),
            accent: "#283593",
            ..Html::default()
        });
        g.add(mail);
    }

    let reviews = [
        (
            "Review request: retry queue for photo uploads",
            "the write-ahead retry queue for photo uploads, with a test that kills the app mid-upload",
        ),
        (
            "Review request: conflict resolution in the sync engine",
            "last-writer-wins with a server clock, and a notification to the user when their edit loses",
        ),
        (
            "Review request: Atlas image pipeline",
            "AVIF conversion at build time, with WebP and JPEG fallbacks",
        ),
        (
            "Review request: redirect map for the old URLs",
            "312 redirects from the old site, generated from the sitemap",
        ),
        (
            "Review request: analytics events for the navigation",
            "seven new events, all documented in the event spec",
        ),
    ];
    for (i, (subject, what)) in reviews.iter().enumerate() {
        let from = if i % 2 == 0 { BOB } else { JORDAN };
        let to = if from == BOB { JORDAN } else { BOB };
        let ts = g.when(
            from,
            day(2023, 6, 1) + i as i64 * 60,
            day(2023, 6, 20) + i as i64 * 60,
        );
        let m = g.add(Mail::new(
            from,
            &[to],
            subject,
            format!("Hi {},\n\nCould you review PR #{}? It adds {what}. Nothing urgent, but I'd like to merge it before Friday's release.\n\nThanks!\n{}\n", first_name(to), 400 + i * 37, first_name(from)),
            ts,
        ));
        let r = g.reply(
            m,
            to,
            [
                "Looks good, two small comments about naming. Approved.\n",
                "Done. One question about the error path, otherwise ship it.\n",
            ][i % 2],
        );
        g.add(r);
    }

    let ooo = g.add(
        Mail::new(
            ALICE,
            &[JORDAN, BOB, CARLA],
            "Out of office Aug 12–23",
            "Hi all,\n\nI'm on vacation from August 12 to 23, hiking in the Dolomites with no signal most days. Jordan is the contact for anything Atlas-related while I'm away.\n\nAlice\n".into(),
            at_local(ALICE, day(2024, 8, 8), 16, 0),
        )
        .alt(plain_html()),
    );
    let r = g.reply(
        ooo,
        CARLA,
        "Enjoy the Dolomites! Try the canederli in Val Gardena.\n\nCarla\n",
    );
    g.add(r);

    let coffee = g.add(Mail::new(
        ALICE,
        &[JORDAN],
        "Coffee this week?",
        "Hi Jordan,\n\nDo you have time for a coffee this week? I'd like to talk about the Q3 roadmap before the planning meeting, and about who could take over the localisation work.\n\nAlice\n".into(),
        at_local(ALICE, day(2024, 6, 24), 9, 0),
    ));
    let r = g.reply(
        coffee,
        JORDAN,
        "Sure, Wednesday at 3 at the café downstairs?\n",
    );
    g.add(r);

    let marathon = g.add(Mail::new(
        TOM,
        &[JORDAN],
        "Marathon training plan",
        "Here is the 16-week plan I mentioned. Four runs a week, long run on Sundays, peak at 32 km three weeks before race day. We can do the long runs together along the Charles.\n\nTom\n".into(),
        at_local(TOM, day(2024, 6, 30), 8, 0),
    ).attach(named(pdf(&["Marathon training plan", "16 weeks, 4 runs per week", "Peak long run: 32 km"]), "marathon_plan_16_weeks.pdf")));
    let f = g.forward(marathon, JORDAN, &[DAN], "Dan, this is the plan Tom and I are following. Want to join for the Boston half in October?\n");
    let f = g.add(f);
    let r = g.reply(
        f,
        DAN,
        "Half marathon, maybe. Full marathon, absolutely not. Count me in for October.\n",
    );
    g.add(r);

    g.add(Mail::new(
        CARLA,
        &[JORDAN, ALICE],
        "Moodboard for Atlas",
        "Hi both,\n\nThe moodboard is in the shared folder: warm neutrals, one accent colour, and a lot more white space than today. The typography is Inter for text and a serif for headlines. Feedback welcome before the kickoff!\n\nCarla\n".into(),
        at_local(CARLA, day(2024, 2, 8), 15, 0),
    ).attach(jpg("atlas_moodboard_v1.jpg", "Atlas moodboard")));
    g.add(Mail::new(
        BOB,
        &[JORDAN],
        "Heads-up: staging is down",
        "Staging is down for a database upgrade until about 3 pm Pacific. Production is not affected.\n\nBob\n".into(),
        at_local(BOB, day(2024, 11, 26), 10, 0),
    ).unread(true));
    g.add(Mail::new(
        PRIYA,
        &[JORDAN],
        "Welcome to Harbor Analytics!",
        "Hi Jordan,\n\nWelcome aboard! Your laptop ships this week, and your first day starts with breakfast at 9:30 at the Boston office. Your onboarding buddy is Marcus from the data platform team.\n\nPriya\n".into(),
        at_local(PRIYA, day(2024, 7, 29), 19, 0),
    ));
    g.add(Mail::new(
        DAN,
        &[JORDAN],
        "Thanksgiving at our place this year",
        "Jenna wants to host Thanksgiving this year. Can you bring the green bean casserole? Mom is doing the pies, obviously.\n\nDan\n".into(),
        at_local(DAN, day(2024, 11, 10), 19, 30),
    ));
    g.add(Mail::new(
        MOM,
        &[JORDAN],
        "Did you get home safe?",
        "Just checking that you got home safe. The house is so quiet without you. Call me this weekend.\n\nLove, Mom\n".into(),
        at_local(MOM, day(2024, 12, 27), 18, 0),
    ).unread(true));
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "data/demo/sample.mbox".to_string());
    let mut g = Gen {
        rng: Rng(0x5ea1_de11_0000_2024),
        mails: Vec::new(),
    };
    atlas(&mut g);
    heron(&mut g);
    juniper(&mut g);
    invoices(&mut g);
    travel(&mut g);
    shipping(&mut g);
    newsletters(&mut g);
    security(&mut g);
    job_offer(&mut g);
    family(&mut g);
    recipes(&mut g);
    invitations(&mut g);
    international(&mut g);
    everyday(&mut g);

    // Read or unread: recent mail is often unread, older mail almost never.
    for i in 0..g.mails.len() {
        if g.mails[i].unread.is_none() {
            let p = if g.mails[i].ts > RECENT { 0.6 } else { 0.04 };
            let u = g.rng.chance(p);
            g.mails[i].unread = Some(u);
        }
    }
    let bytes = mbox(&g.mails);
    if let Err(e) = std::fs::write(&path, &bytes) {
        eprintln!("cannot write {path}: {e}");
        std::process::exit(1);
    }
    let count = |f: &dyn Fn(&Mail) -> bool| g.mails.iter().filter(|m| f(m)).count();
    println!(
        "wrote {path}: {} messages, {} bytes ({} alternative, {} HTML-only, {} with attachments, {} unread, {} flagged)",
        g.mails.len(),
        bytes.len(),
        count(&|m| m.layout == Layout::Alternative),
        count(&|m| m.layout == Layout::HtmlOnly),
        count(&|m| !m.attachments.is_empty()),
        count(&|m| m.unread == Some(true)),
        count(&|m| m.flagged),
    );
}
