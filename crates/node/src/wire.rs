//! The peer protocol's bytes: length-delimited frames, each a version byte
//! then a postcard body, and the handshake that opens every connection.
//!
//! A frame is a big-endian `u32` length (of what follows, at most
//! [`MAX_FRAME_BYTES`]), the [`VERSION`] byte, then the postcard encoding of a
//! [`Hello`], a [`HelloReply`] or a [`replica::Envelope`]. A length past the
//! bound, another version, or bytes postcard cannot decode end the connection
//! before anything reaches the replica.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The protocol version this node speaks. 2: the handshake carries the
/// dialler's peer address.
pub const VERSION: u8 = 2;

/// The largest frame accepted: one append of raft's largest batch (1 MiB
/// by default) or snapshot chunk, with room to spare.
pub const MAX_FRAME_BYTES: u32 = 32 << 20;

/// The first frame of a connection, from the dialling node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The dialler's cluster.
    pub cluster_id: u64,
    /// The dialler's node id.
    pub from: u64,
    /// The node the dialler means to reach.
    pub to: u64,
    /// The dialler's HTTP address, so that requests can be forwarded to it.
    pub http_addr: String,
    /// Where the dialler accepts peer connections, so that the acceptor
    /// can dial back a member it did not know (one that joined).
    pub peer_addr: String,
}

/// The acceptor's answer to a [`Hello`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloReply {
    /// Accepted: envelopes follow.
    Welcome,
    /// Refused, with the reason; the acceptor closes the connection.
    Refused(String),
}

/// Why a frame could not be read.
#[derive(Debug)]
pub enum FrameError {
    /// The connection failed or closed.
    Io(std::io::Error),
    /// The length prefix exceeds [`MAX_FRAME_BYTES`].
    TooLarge(u32),
    /// An empty frame, another version byte, or an undecodable body.
    Malformed(String),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Io(e) => write!(f, "i/o: {e}"),
            FrameError::TooLarge(n) => write!(f, "frame of {n} bytes (limit {MAX_FRAME_BYTES})"),
            FrameError::Malformed(why) => write!(f, "malformed frame: {why}"),
        }
    }
}

/// Encodes `value` as one frame.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let body = postcard::to_allocvec(value).expect("our types encode");
    let mut frame = Vec::with_capacity(body.len() + 5);
    frame.extend_from_slice(&((body.len() + 1) as u32).to_be_bytes());
    frame.push(VERSION);
    frame.extend_from_slice(&body);
    frame
}

/// Writes `value` as one frame.
pub async fn write_frame<W, T>(w: &mut W, value: &T) -> Result<(), FrameError>
where
    W: AsyncWrite + Unpin,
    T: Serialize,
{
    w.write_all(&encode(value)).await.map_err(FrameError::Io)
}

/// Reads one frame and decodes it.
pub async fn read_frame<R, T>(r: &mut R) -> Result<T, FrameError>
where
    R: AsyncRead + Unpin,
    T: for<'de> Deserialize<'de>,
{
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await.map_err(FrameError::Io)?;
    let len = u32::from_be_bytes(len);
    if len > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(len));
    }
    if len == 0 {
        return Err(FrameError::Malformed("empty frame".into()));
    }
    let mut buf = vec![0u8; len as usize];
    r.read_exact(&mut buf).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            FrameError::Malformed(format!("truncated frame (announced {len} bytes)"))
        } else {
            FrameError::Io(e)
        }
    })?;
    if buf[0] != VERSION {
        return Err(FrameError::Malformed(format!(
            "version {} (this node speaks {VERSION})",
            buf[0]
        )));
    }
    postcard::from_bytes(&buf[1..]).map_err(|e| FrameError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_frame_round_trips_and_garbage_is_refused() {
        let hello = Hello {
            cluster_id: 7,
            from: 1,
            to: 2,
            http_addr: "127.0.0.1:1".into(),
            peer_addr: "127.0.0.1:2".into(),
        };
        let bytes = encode(&hello);
        let back: Hello = read_frame(&mut &bytes[..]).await.unwrap();
        assert_eq!(back, hello);

        let garbage = b"GET / HTTP/1.1\r\n\r\n";
        let err = read_frame::<_, Hello>(&mut &garbage[..]).await.unwrap_err();
        assert!(matches!(err, FrameError::TooLarge(_)), "{err}");

        let mut other_version = bytes.clone();
        other_version[4] = 9;
        let err = read_frame::<_, Hello>(&mut &other_version[..]).await;
        assert!(matches!(err, Err(FrameError::Malformed(_))));

        let truncated = &bytes[..bytes.len() - 1];
        let err = read_frame::<_, Hello>(&mut &truncated[..]).await;
        assert!(matches!(err, Err(FrameError::Malformed(_))));
    }
}
