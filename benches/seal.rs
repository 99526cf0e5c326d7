//! Seal and open throughput for record-sized buffers, and the record codec.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sealdex::SecretKey;
use sealdex::seal::{RecordKind, Sealer};
use std::hint::black_box;

fn seal(c: &mut Criterion) {
    let sealer = Sealer::new(&SecretKey::from_bytes([7; 32]));
    let mut g = c.benchmark_group("seal");
    for size in [256usize, 2048, 16 << 10, 256 << 10] {
        let plain = vec![0x61u8; size];
        let env = sealer.seal(RecordKind::Document, b"key", &plain);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("seal", size), &plain, |b, p| {
            b.iter(|| sealer.seal(RecordKind::Document, b"key", black_box(p)))
        });
        g.bench_with_input(BenchmarkId::new("open", size), &env, |b, e| {
            b.iter(|| {
                sealer
                    .open(RecordKind::Document, b"key", black_box(e))
                    .unwrap()
            })
        });
    }
    g.finish();
}

fn codec(c: &mut Criterion) {
    let record = sealdex::Record {
        id: "easy-ham-1/00001.7c53336b37003a9286aba55d2945844c.txt".into(),
        source: "tree:/corpus".into(),
        subject: "Re: New Sequences Window".into(),
        body: "Date: Wed, 21 Aug 2002 10:54:46 -0500 From: Chris Garrigues. I can't reproduce \
               this error. For me it is very repeatable... (like every time, without fail). "
            .repeat(20),
        from: "Robert Elz <kre@munnari.OZ.AU>".into(),
        to: "Chris Garrigues <cwg-dated-1030377287.06fa6d@DeepEddy.Com>".into(),
        ..Default::default()
    };
    let enc = sealdex::record::encode(&record);
    let mut g = c.benchmark_group("record");
    g.throughput(Throughput::Bytes(record.text_len() as u64));
    g.bench_function("encode", |b| {
        b.iter(|| sealdex::record::encode(black_box(&record)))
    });
    g.bench_function("decode", |b| {
        b.iter(|| sealdex::record::decode(black_box(&enc)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, seal, codec);
criterion_main!(benches);
