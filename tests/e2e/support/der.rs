//! DER and PEM by hand: object identifiers, tag-length-value, unsigned INTEGERs, PEM blocks.

use std::fs;
use std::path::{Path, PathBuf};

/// The DER encoding (tag, length, content) of a dotted object identifier.
pub(crate) fn oid_der(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u64> = dotted
        .split('.')
        .map(|a| a.parse().expect("numeric arc"))
        .collect();
    let mut content = Vec::new();
    let mut push = |mut v: u64| {
        let mut tmp = vec![(v & 0x7f) as u8];
        v >>= 7;
        while v > 0 {
            tmp.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        tmp.reverse();
        content.extend(tmp);
    };
    push(arcs[0] * 40 + arcs[1]);
    for &a in &arcs[2..] {
        push(a);
    }
    let mut out = vec![0x06, content.len() as u8];
    out.extend(content);
    out
}

/// DER tag-length-value with a short or long definite length.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let len: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | len.len() as u8);
        out.extend(len);
    }
    out.extend_from_slice(content);
    out
}

/// The content of the DER element at the start of `der` (definite length).
pub(crate) fn der_content(der: &[u8]) -> &[u8] {
    let first = der[1] as usize;
    let (len, start) = if first < 0x80 {
        (first, 2)
    } else {
        let k = first & 0x7f;
        let len = der[2..2 + k]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, 2 + k)
    };
    &der[start..start + len]
}

/// Whether `haystack` contains `needle`.
pub(crate) fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Standard base64 with padding, wrapped at 64 columns as PEM wants.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let n = chunk.len();
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= n {
                b64.push(ALPHABET[((v >> (18 - 6 * i)) & 0x3f) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("ascii"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The base64 bodies of the PEM blocks with `label` in `text`, whitespace removed.
pub(crate) fn pem_bodies(text: &str, label: &str) -> Vec<String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(&begin) {
        let after = &rest[i + begin.len()..];
        let Some(j) = after.find(&end) else { break };
        out.push(after[..j].split_whitespace().collect());
        rest = &after[j + end.len()..];
    }
    out
}

/// A DER INTEGER of the unsigned big-endian `bytes`.
pub(crate) fn der_uint(bytes: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    if v.is_empty() || v[0] & 0x80 != 0 {
        v.insert(0, 0);
    }
    tlv(0x02, &v)
}

/// Writes a DER certificate as PEM to `path` and returns the path.
#[track_caller]
pub(crate) fn write_cert_pem(path: &Path, der: &[u8]) -> PathBuf {
    fs::write(path, pem_encode("CERTIFICATE", der))
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    path.to_path_buf()
}
