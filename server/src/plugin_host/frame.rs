//! The frames between the CA and a plugin-host process, over the socket pair that joins them.
//!
//! One frame: a big-endian `u32` length of what follows, then a kind byte, a big-endian `u64`
//! call id, a big-endian `u16` head length, the head (a short UTF-8 word: a host method name, a
//! log level, the protocol name) and the body: the same JSON payloads the plugin ABI carries
//! (`HttpRequest`, `HttpResponse`, host-API requests and answers, `HostError`), or a
//! `PluginError` as JSON. Nothing in a frame is trusted by the side that reads it: the length is
//! bounded before anything is allocated, and the body grows only as bytes actually arrive.

use std::io::{self, Read, Write};

/// What a frame says. The comment names the side that sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    /// CA → host: load the plugin (body: [`super::InitRequest`] JSON; head: the protocol).
    Init = 1,
    /// host → CA: the plugin is loaded (body: [`super::Ready`] JSON).
    Ready = 2,
    /// host → CA: loading failed (body: `PluginError` JSON).
    InitFailed = 3,
    /// CA → host: an HTTP request for the plugin (body: `HttpRequest` JSON).
    Http = 4,
    /// host → CA: the plugin's answer (body: `HttpResponse` JSON).
    HttpAnswer = 5,
    /// host → CA: the call failed (body: `PluginError` JSON).
    HttpFailed = 6,
    /// host → CA: the plugin calls the host API (head: method; body: its JSON request).
    HostCall = 7,
    /// CA → host: the host call's answer (body: its JSON response).
    HostAnswer = 8,
    /// CA → host: the host call was refused (body: `HostError` JSON).
    HostFailed = 9,
    /// host → CA: the plugin logs (head: level; body: the message).
    Log = 10,
    /// CA → host: stop (the plugin's `shutdown`, then exit).
    Shutdown = 11,
    /// host → CA: the sandbox it is in, sent before the plugin's library is opened (body:
    /// `Confinement` JSON); the CA believes only this first one.
    Confined = 12,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        use Kind::*;
        [
            Init, Ready, InitFailed, Http, HttpAnswer, HttpFailed, HostCall, HostAnswer,
            HostFailed, Log, Shutdown, Confined,
        ]
        .into_iter()
        .find(|k| *k as u8 == b)
    }
}

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub kind: Kind,
    /// The call a frame belongs to (an HTTP call's id chosen by the CA, a host call's by the
    /// host process); 0 for frames of no call.
    pub id: u64,
    pub head: String,
    pub body: Vec<u8>,
}

/// Bytes after the length prefix that are not head or body: kind, id, head length.
const FIXED: usize = 1 + 8 + 2;

/// Why a frame could not be read: the peer closed the socket, or broke the protocol.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("the other side closed the connection")]
    Closed,
    #[error("cannot read a frame: {0}")]
    Io(#[from] io::Error),
    #[error("a frame of {len} bytes is over the limit of {max}")]
    TooLong { len: usize, max: usize },
    #[error("bad frame: {0}")]
    Malformed(&'static str),
    /// A well-formed frame where another was due (a process's first frame must be `Init`).
    #[error("expected {expected}, got a {kind:?} frame headed {head:?}")]
    Unexpected {
        expected: &'static str,
        kind: Kind,
        head: String,
    },
}

impl Frame {
    pub(crate) fn new(kind: Kind, id: u64, head: &str, body: Vec<u8>) -> Frame {
        Frame {
            kind,
            id,
            head: head.to_owned(),
            body,
        }
    }

    /// Writes the frame in one `write_all` (callers hold the writer's lock, so frames of
    /// different threads never interleave).
    pub(crate) fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        let head = self.head.as_bytes();
        let head_len = u16::try_from(head.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame head too long"))?;
        let len = u32::try_from(FIXED + head.len() + self.body.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too long"))?;
        let mut out = Vec::with_capacity(4 + len as usize);
        out.extend_from_slice(&len.to_be_bytes());
        out.push(self.kind as u8);
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&head_len.to_be_bytes());
        out.extend_from_slice(head);
        out.extend_from_slice(&self.body);
        w.write_all(&out)?;
        w.flush()
    }

    /// Reads one frame of at most `max` bytes (after the length prefix).
    pub(crate) fn read_from(r: &mut impl Read, max: usize) -> Result<Frame, FrameError> {
        let mut prefix = [0u8; 4];
        match r.read_exact(&mut prefix) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
            Err(e) => return Err(FrameError::Io(e)),
        }
        let len = u32::from_be_bytes(prefix) as usize;
        if len > max {
            return Err(FrameError::TooLong { len, max });
        }
        if len < FIXED {
            return Err(FrameError::Malformed("shorter than its fixed part"));
        }
        // Grows as bytes arrive: a peer that announces much and sends little costs little.
        let mut rest = Vec::new();
        r.take(len as u64).read_to_end(&mut rest)?;
        if rest.len() != len {
            return Err(FrameError::Closed);
        }
        let kind = Kind::from_u8(rest[0]).ok_or(FrameError::Malformed("unknown kind"))?;
        let id = u64::from_be_bytes(rest[1..9].try_into().expect("8 bytes"));
        let head_len = u16::from_be_bytes([rest[9], rest[10]]) as usize;
        if FIXED + head_len > len {
            return Err(FrameError::Malformed("head longer than the frame"));
        }
        let head = std::str::from_utf8(&rest[FIXED..FIXED + head_len])
            .map_err(|_| FrameError::Malformed("head is not UTF-8"))?
            .to_owned();
        // In place: a body of many MiB is moved down, not copied into a second buffer.
        rest.drain(..FIXED + head_len);
        let body = rest;
        Ok(Frame {
            kind,
            id,
            head,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let frames = [
            Frame::new(Kind::Http, 7, "", br#"{"v":1}"#.to_vec()),
            Frame::new(
                Kind::HostCall,
                u64::MAX,
                "lookup_certificate",
                b"{}".to_vec(),
            ),
            Frame::new(Kind::Log, 0, "2", "çalışıyor".as_bytes().to_vec()),
            Frame::new(Kind::Shutdown, 0, "", Vec::new()),
        ];
        let mut wire = Vec::new();
        for f in &frames {
            f.write_to(&mut wire).unwrap();
        }
        let mut r = wire.as_slice();
        for f in &frames {
            assert_eq!(&Frame::read_from(&mut r, 1 << 20).unwrap(), f);
        }
        assert!(matches!(
            Frame::read_from(&mut r, 1 << 20),
            Err(FrameError::Closed)
        ));
    }

    #[test]
    fn hostile_frames_are_refused_before_allocation() {
        // Announces 4 GiB: refused on the prefix alone.
        let r = Frame::read_from(&mut &[0xff, 0xff, 0xff, 0xff, 4][..], 1 << 20);
        assert!(matches!(r, Err(FrameError::TooLong { .. })), "{r:?}");
        // Announces 100 bytes, sends 12: the peer is gone.
        let mut short = 100u32.to_be_bytes().to_vec();
        short.extend_from_slice(&[4, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 9]);
        let r = Frame::read_from(&mut short.as_slice(), 1 << 20);
        assert!(matches!(r, Err(FrameError::Closed)), "{r:?}");
        // Unknown kind, head past the end, head not UTF-8, too short.
        for (bytes, what) in [
            (
                vec![0, 0, 0, 11, 99, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0],
                "unknown kind",
            ),
            (
                vec![0, 0, 0, 11, 4, 0, 0, 0, 0, 0, 0, 0, 1, 0, 5],
                "head longer",
            ),
            (
                vec![0, 0, 0, 12, 4, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0xff],
                "not UTF-8",
            ),
            (vec![0, 0, 0, 3, 4, 0, 0], "shorter"),
        ] {
            let r = Frame::read_from(&mut bytes.as_slice(), 1 << 20);
            match r {
                Err(FrameError::Malformed(m)) => assert!(m.contains(what), "{m}"),
                other => panic!("{what}: {other:?}"),
            }
        }
    }
}
