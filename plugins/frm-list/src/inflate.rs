//! A small DEFLATE (RFC 1951) decoder that produces only the first bytes of a stream.
//!
//! Used by [`crate::zipguard`] to look at the start of a workbook part before calamine reads
//! it; the parts themselves are decompressed by calamine's zip reader. Decoding follows the
//! RFC's canonical-code construction (as zlib's `puff.c` does): bit by bit, no tables, which is
//! slow but plenty for a few KiB. It accepts incomplete codes (more than zlib) and refuses
//! over-subscribed ones; any malformed input is an `Err`, never a panic.

/// Malformed or truncated DEFLATE data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InflateError;

type R<T> = Result<T, InflateError>;

struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    buf: u32,
    cnt: u32,
}

impl Bits<'_> {
    /// The next `n` (≤ 16) bits, least significant first.
    fn take(&mut self, n: u32) -> R<u32> {
        while self.cnt < n {
            let b = *self.data.get(self.pos).ok_or(InflateError)?;
            self.pos += 1;
            self.buf |= u32::from(b) << self.cnt;
            self.cnt += 8;
        }
        let v = self.buf & ((1u32 << n) - 1);
        self.buf >>= n;
        self.cnt -= n;
        Ok(v)
    }

    /// Drops the bits left in the current byte (the buffer never holds a whole unread byte
    /// between symbols: `take` loads bytes only as needed).
    fn align(&mut self) {
        self.buf = 0;
        self.cnt = 0;
    }
}

/// A canonical Huffman code: how many codes of each length, and the symbols in code order.
struct Huffman {
    count: [u16; 16],
    symbol: Vec<u16>,
}

impl Huffman {
    fn new(lengths: &[u8]) -> R<Huffman> {
        let mut count = [0u16; 16];
        for &l in lengths {
            count[usize::from(l)] += 1;
        }
        let mut left: i32 = 1;
        for &c in &count[1..] {
            left = left * 2 - i32::from(c);
            if left < 0 {
                return Err(InflateError);
            }
        }
        let mut offs = [0u16; 16];
        for len in 1..15 {
            offs[len + 1] = offs[len] + count[len];
        }
        let mut symbol = vec![0u16; lengths.len()];
        for (sym, &l) in lengths.iter().enumerate() {
            if l != 0 {
                let o = &mut offs[usize::from(l)];
                symbol[usize::from(*o)] = sym as u16;
                *o += 1;
            }
        }
        Ok(Huffman { count, symbol })
    }

    fn decode(&self, bits: &mut Bits<'_>) -> R<u16> {
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for len in 1..16 {
            code |= bits.take(1)? as i32;
            let count = i32::from(self.count[len]);
            if code - count < first {
                let at = usize::try_from(index + (code - first)).map_err(|_| InflateError)?;
                return self.symbol.get(at).copied().ok_or(InflateError);
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        Err(InflateError)
    }
}

const LEN_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LEN_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];
/// The order in which code-length code lengths are sent.
const CL_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

/// Decodes `input` until the end of the stream or until `limit` bytes are out, whichever is
/// first. The output is at most `limit` bytes.
pub(crate) fn inflate_prefix(input: &[u8], limit: usize) -> R<Vec<u8>> {
    let mut bits = Bits {
        data: input,
        pos: 0,
        buf: 0,
        cnt: 0,
    };
    let mut out = Vec::with_capacity(limit.min(1 << 16));
    loop {
        let last = bits.take(1)?;
        match bits.take(2)? {
            0 => stored(&mut bits, &mut out, limit)?,
            1 => {
                let (lit, dist) = fixed()?;
                codes(&mut bits, &mut out, limit, &lit, &dist)?;
            }
            2 => {
                let (lit, dist) = dynamic(&mut bits)?;
                codes(&mut bits, &mut out, limit, &lit, &dist)?;
            }
            _ => return Err(InflateError),
        }
        if out.len() >= limit {
            out.truncate(limit);
            return Ok(out);
        }
        if last == 1 {
            return Ok(out);
        }
    }
}

fn stored(bits: &mut Bits<'_>, out: &mut Vec<u8>, limit: usize) -> R<()> {
    bits.align();
    let header = bits.data.get(bits.pos..bits.pos + 4).ok_or(InflateError)?;
    let len = u16::from_le_bytes([header[0], header[1]]);
    let nlen = u16::from_le_bytes([header[2], header[3]]);
    if len != !nlen {
        return Err(InflateError);
    }
    bits.pos += 4;
    let len = usize::from(len);
    let want = len.min(limit.saturating_sub(out.len()));
    let data = bits
        .data
        .get(bits.pos..bits.pos + want)
        .ok_or(InflateError)?;
    out.extend_from_slice(data);
    if want == len {
        bits.pos += len;
    }
    Ok(())
}

fn fixed() -> R<(Huffman, Huffman)> {
    let mut lengths = [0u8; 288];
    lengths[..144].fill(8);
    lengths[144..256].fill(9);
    lengths[256..280].fill(7);
    lengths[280..].fill(8);
    Ok((Huffman::new(&lengths)?, Huffman::new(&[5u8; 30])?))
}

fn dynamic(bits: &mut Bits<'_>) -> R<(Huffman, Huffman)> {
    let nlen = bits.take(5)? as usize + 257;
    let ndist = bits.take(5)? as usize + 1;
    let ncode = bits.take(4)? as usize + 4;
    if nlen > 286 || ndist > 30 {
        return Err(InflateError);
    }
    let mut cl = [0u8; 19];
    for &at in &CL_ORDER[..ncode] {
        cl[at] = bits.take(3)? as u8;
    }
    let clcode = Huffman::new(&cl)?;
    let mut lengths = [0u8; 286 + 30];
    let mut index = 0;
    while index < nlen + ndist {
        let sym = clcode.decode(bits)?;
        if sym < 16 {
            lengths[index] = sym as u8;
            index += 1;
            continue;
        }
        let (value, repeat) = match sym {
            16 => {
                let prev = *lengths
                    .get(index.checked_sub(1).ok_or(InflateError)?)
                    .ok_or(InflateError)?;
                (prev, 3 + bits.take(2)? as usize)
            }
            17 => (0, 3 + bits.take(3)? as usize),
            _ => (0, 11 + bits.take(7)? as usize),
        };
        if index + repeat > nlen + ndist {
            return Err(InflateError);
        }
        lengths[index..index + repeat].fill(value);
        index += repeat;
    }
    if lengths[256] == 0 {
        return Err(InflateError);
    }
    Ok((
        Huffman::new(&lengths[..nlen])?,
        Huffman::new(&lengths[nlen..nlen + ndist])?,
    ))
}

fn codes(
    bits: &mut Bits<'_>,
    out: &mut Vec<u8>,
    limit: usize,
    lit: &Huffman,
    dist: &Huffman,
) -> R<()> {
    while out.len() < limit {
        let sym = usize::from(lit.decode(bits)?);
        if sym < 256 {
            out.push(sym as u8);
            continue;
        }
        if sym == 256 {
            return Ok(());
        }
        let s = sym - 257;
        if s >= LEN_BASE.len() {
            return Err(InflateError);
        }
        let len = usize::from(LEN_BASE[s]) + bits.take(u32::from(LEN_EXTRA[s]))? as usize;
        let d = usize::from(dist.decode(bits)?);
        if d >= DIST_BASE.len() {
            return Err(InflateError);
        }
        let back = usize::from(DIST_BASE[d]) + bits.take(u32::from(DIST_EXTRA[d]))? as usize;
        if back > out.len() {
            return Err(InflateError);
        }
        for _ in 0..len {
            if out.len() >= limit {
                break;
            }
            out.push(out[out.len() - back]);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_and_fixed_blocks() {
        // A stored final block holding "abc".
        assert_eq!(
            inflate_prefix(&[0x01, 0x03, 0x00, 0xfc, 0xff, b'a', b'b', b'c'], 100).unwrap(),
            b"abc"
        );
        // zlib's raw deflate of "hello hello hello hello" (level 1: a fixed-Huffman block).
        let data = hex("cb48cdc9c957c8402701");
        assert_eq!(
            inflate_prefix(&data, 100).unwrap(),
            b"hello hello hello hello"
        );
        assert_eq!(inflate_prefix(&data, 7).unwrap(), b"hello h");
        // Level 9 on bytes 0..=255 three times and a repeated tag: a dynamic block.
        let data = hex(DYNAMIC);
        let mut want: Vec<u8> = (0..=255u8).cycle().take(768).collect();
        for _ in 0..50 {
            want.extend_from_slice(b"<sst uniqueCount=\"12\">");
        }
        assert_eq!(inflate_prefix(&data, 1 << 20).unwrap(), want);
        assert_eq!(inflate_prefix(&data, 1000).unwrap(), want[..1000]);
        // Truncated: an error, never a panic.
        for cut in 0..data.len() {
            let _ = inflate_prefix(&data[..cut], 1 << 20);
        }
    }

    const DYNAMIC: &str = "6360646266616563e7e0e4e2e6e1e5e3171014121611151397909492969195935750545256515553d7d0d4d2d6d1d5d33730343236313533b7b0b4b2b6b1b5b37770747276717573f7f0f4f2f6f1f5f30f080c0a0e090d0b8f888c8a8e898d8b4f484c4a4e494d4bcfc8cccacec9cdcb2f282c2a2e292d2bafa8acaaaea9adab6f686c6a6e696d6befe8eceaeee9edeb9f3071d2e42953a74d9f3173d6ec3973e7cd5fb070d1e2254b972d5fb172d5ea356bd7addfb071d3e62d5bb76ddfb173d7ee3d7bf7ed3f70f0d0e123478f1d3f71f2d4e93367cf9dbf70f1d2e52b57af5dbf71f3d6ed3b77efdd7ff0f0d1e3274f9f3d7ff1f2d5eb376fdfbdfff0f1d3e72f5fbf7dfff1f3d7ef3f7ffffd6718f5ff88f6bf4d71718942695e666169aa737e695e89ad92a19192dda8e8a8e8a8e8a82869a200";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        assert_eq!(inflate_prefix(&[], 10), Err(InflateError));
        assert_eq!(inflate_prefix(&[0x07], 10), Err(InflateError)); // block type 3
        assert_eq!(
            inflate_prefix(&[0x01, 0x03, 0x00, 0x00, 0x00], 10),
            Err(InflateError)
        );
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for n in 0..3000 {
            let len = n % 300;
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let _ = inflate_prefix(&data, 4096);
        }
    }
}
