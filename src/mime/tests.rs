use super::*;
use proptest::prelude::*;

fn roundtrip(raw: &[u8], min_part: usize) -> Vec<Cut> {
    let cuts = split(raw, min_part);
    let sk = skeleton(raw, &cuts);
    let payloads: Vec<Vec<u8>> = cuts.iter().map(|c| c.payload(raw)).collect();
    let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
    let back = splice(&sk, &splices(&cuts), &refs, raw.len() as u64).expect("splice");
    assert_eq!(back, raw, "rebuild differs");
    let h = splice_hash(blake3::Hasher::new(), &sk, &splices(&cuts), &refs, raw.len() as u64).expect("splice_hash");
    assert_eq!(h, *blake3::hash(raw).as_bytes(), "streamed hash differs");
    for w in cuts.windows(2) {
        assert!(w[0].end <= w[1].start, "overlap {cuts:?}");
    }
    cuts
}

fn b64_block(n: usize, eol: &str) -> String {
    let data: Vec<u8> = (0..n).map(|i| (i * 7 % 251) as u8).collect();
    let mut out = Vec::new();
    base64::encode_into(
        &data,
        B64Layout {
            line_len: 76,
            crlf: eol == "\r\n",
            final_eol: true,
        },
        &mut out,
    );
    String::from_utf8(out).unwrap()
}

#[test]
fn multipart_with_attachment_cuts_the_attachment_only() {
    for eol in ["\r\n", "\n"] {
        let att = b64_block(6000, "\n");
        let text = "hello\n".repeat(10);
        let raw = format!(
            "From: a@b\nContent-Type: multipart/mixed; boundary=\"XX\"\n\npreamble\n--XX\nContent-Type: text/plain\n\n{text}\n--XX\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n{att}\n--XX--\nepilogue\n"
        )
        .replace('\n', eol);
        let cuts = roundtrip(raw.as_bytes(), 2048);
        assert_eq!(cuts.len(), 1, "{eol:?}");
        assert!(matches!(cuts[0].transform, Transform::Base64(_)));
        assert_eq!(cuts[0].payload(raw.as_bytes()).len(), 6000);
    }
}

#[test]
fn single_part_long_body_is_cut_whole() {
    let raw = format!("Subject: x\r\n\r\n{}", "line of text\r\n".repeat(400));
    let cuts = roundtrip(raw.as_bytes(), 2048);
    assert_eq!(cuts.len(), 1);
    assert_eq!(cuts[0].start, 14);
    assert_eq!(cuts[0].end, raw.len());
}

#[test]
fn nested_and_forwarded_messages_are_walked() {
    let att = b64_block(4000, "\n");
    let inner = format!("Subject: inner\nContent-Type: multipart/mixed; boundary=in\n\n--in\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n\n{att}--in--\n");
    let raw = format!("Subject: fwd\nContent-Type: multipart/mixed; boundary=out\n\n--out\nContent-Type: message/rfc822\n\n{inner}\n--out--\n");
    let cuts = roundtrip(raw.as_bytes(), 2048);
    assert_eq!(cuts.len(), 1);
    assert_eq!(cuts[0].payload(raw.as_bytes()).len(), 4000);
}

#[test]
fn boundary_prefix_of_another_line_is_not_a_delimiter() {
    let body = "x".repeat(3000);
    let raw = format!("Content-Type: multipart/mixed; boundary=ab\n\n--ab\n\n{body}\n--abc not a delimiter\n--ab--\n");
    let cuts = roundtrip(raw.as_bytes(), 2048);
    assert_eq!(cuts.len(), 1);
    assert!(raw[cuts[0].start..cuts[0].end].ends_with("not a delimiter"));
}

#[test]
fn hostile_inputs_do_not_panic() {
    let deep: String = (0..200)
        .map(|i| format!("Content-Type: multipart/mixed; boundary=b{i}\n\n--b{i}\n"))
        .collect();
    for raw in [
        &b""[..],
        b"\n",
        b"\r\n\r\n",
        b"Content-Type: multipart/mixed; boundary=\n\n--\n--\n",
        b"Content-Type: multipart/mixed; boundary=a\n\n--a",
        b"Content-Type: multipart/mixed; boundary=a\n\n--a--",
        b"Content-Transfer-Encoding: base64\n\n====\n",
        deep.as_bytes(),
    ] {
        roundtrip(raw, 1);
        roundtrip(raw, 2048);
    }
}

/// A random MIME tree rendered to bytes.
fn entity(depth: u32) -> BoxedStrategy<String> {
    let leaf = (any::<bool>(), 0usize..5000, any::<bool>()).prop_map(|(b64, n, crlf)| {
        let eol = if crlf { "\r\n" } else { "\n" };
        if b64 {
            format!(
                "Content-Type: application/pdf{eol}Content-Transfer-Encoding: base64{eol}{eol}{}",
                b64_block(n, eol)
            )
        } else {
            format!("Content-Type: text/plain{eol}{eol}{}", "lorem ipsum ".repeat(n / 12))
        }
    });
    if depth == 0 {
        return leaf.boxed();
    }
    prop_oneof![
        leaf,
        (
            proptest::collection::vec(entity(depth - 1), 1..4),
            "[a-zA-Z0-9'()+_,-./:=?]{1,30}"
        )
            .prop_map(|(kids, b)| {
                let mut s = format!("Content-Type: multipart/mixed; boundary=\"{b}\"\n\nthis is a preamble\n");
                for k in kids {
                    s.push_str(&format!("--{b}\n{k}\n"));
                }
                s.push_str(&format!("--{b}--\nepilogue\n"));
                s
            }),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn generated_messages_rebuild_exactly(body in entity(3), min_part in 1usize..4096) {
        let raw = format!("From: x@y\nSubject: test\n{body}");
        roundtrip(raw.as_bytes(), min_part);
    }

    #[test]
    fn arbitrary_bytes_rebuild_exactly(raw in proptest::collection::vec(any::<u8>(), 0..2000), min_part in 1usize..64) {
        roundtrip(&raw, min_part);
    }
}
