//! Criterion benchmarks of the per-message hot paths: hashing, MIME split and
//! rebuild, base64 layout detection, blob compression, mbox reading. Input: the
//! bundled demo sample plus a synthetic message with a 1 MB attachment.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mailvault::mime;
use mailvault::model::{Hash32, RawMessage};
use mailvault::source::mbox::{MboxFormat, MboxReader};
use mailvault::source::{read_paths, Event, LocalOptions};

fn sample() -> Vec<RawMessage> {
    let mut v = Vec::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/sample");
    read_paths(&[dir], &LocalOptions::default(), &mut |ev| {
        if let Event::Message(m) = ev {
            v.push(m);
        }
        Ok(())
    })
    .unwrap();
    v
}

fn attachment_message() -> Vec<u8> {
    use base64::Engine;
    let data: Vec<u8> = (0..1_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 7) as u8)
        .collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(data);
    let mut raw = b"From: a@b\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\nContent-Type: text/plain\r\n\r\nhi\r\n--q\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n".to_vec();
    for l in b64.as_bytes().chunks(76) {
        raw.extend_from_slice(l);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"--q--\r\n");
    raw
}

fn bench(c: &mut Criterion) {
    let msgs = sample();
    let total: u64 = msgs.iter().map(|m| m.raw.len() as u64).sum();
    let big = attachment_message();

    let mut g = c.benchmark_group("sample-500");
    g.throughput(Throughput::Bytes(total));
    g.bench_function("blake3", |b| {
        b.iter(|| {
            msgs.iter()
                .map(|m| Hash32::of(black_box(&m.raw)).0[0])
                .fold(0u8, |a, x| a ^ x)
        })
    });
    g.bench_function("split+skeleton", |b| {
        b.iter(|| {
            for m in &msgs {
                let cuts = mime::split(black_box(&m.raw), mime::DEFAULT_MIN_PART);
                black_box(mime::skeleton(&m.raw, &cuts));
            }
        })
    });
    let skeletons: Vec<Vec<u8>> = msgs
        .iter()
        .map(|m| mime::skeleton(&m.raw, &mime::split(&m.raw, mime::DEFAULT_MIN_PART)))
        .collect();
    let refs: Vec<&[u8]> = skeletons.iter().map(Vec::as_slice).collect();
    let dict = zstd::dict::from_samples(&refs, 112 * 1024).unwrap();
    for level in [3, 9, 19] {
        let cdict = zstd::dict::EncoderDictionary::copy(&dict, level);
        g.bench_function(format!("zstd-dict-l{level}"), |b| {
            b.iter(|| {
                let mut c = zstd::bulk::Compressor::with_prepared_dictionary(&cdict).unwrap();
                skeletons
                    .iter()
                    .map(|s| c.compress(black_box(s)).unwrap().len())
                    .sum::<usize>()
            })
        });
    }
    let mut mbox = Vec::new();
    for m in &msgs {
        mailvault::source::mbox::write_message(&mut mbox, &m.raw, Some(0)).unwrap();
    }
    g.bench_function("mbox-read", |b| {
        b.iter(|| {
            let mut r = MboxReader::new(black_box(&mbox[..]), MboxFormat::Mboxrd);
            let mut n = 0;
            while let Some(m) = r.next_message().unwrap() {
                n += m.raw.len();
            }
            n
        })
    });
    g.finish();

    let mut g = c.benchmark_group("attachment-1MB");
    g.throughput(Throughput::Bytes(big.len() as u64));
    g.bench_function("split+payload", |b| {
        b.iter(|| {
            let cuts = mime::split(black_box(&big), mime::DEFAULT_MIN_PART);
            cuts.iter().map(|c| c.payload(&big).len()).sum::<usize>()
        })
    });
    let cuts = mime::split(&big, mime::DEFAULT_MIN_PART);
    let sk = mime::skeleton(&big, &cuts);
    let payloads: Vec<Vec<u8>> = cuts.iter().map(|c| c.payload(&big)).collect();
    let prefs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
    let splices = mime::splices(&cuts);
    g.bench_function("splice(rebuild)", |b| {
        b.iter(|| {
            mime::splice(black_box(&sk), &splices, &prefs, big.len() as u64)
                .unwrap()
                .len()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
