//! NAMESPACE (RFC 2342) over an authenticated session. The IMAP parser we use does
//! not know the answer (it would fail the connection), so the exchange is done on
//! the session's stream directly — still behind the literal guard — between two
//! commands, when the parser holds nothing unread. The answer is parsed by
//! [`crate::plan::namespace`].

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{debug, warn};

use super::connect::{timed, ImapSession};
use super::ImapError;
use crate::plan::namespace::{self, Namespaces};

const TAG: &str = "MVNS";
/// The most bytes one answer line may have (literals included).
const MAX_RESPONSE: usize = 64 * 1024;
/// The most untagged lines read before the tagged answer.
const MAX_LINES: usize = 64;

/// Asks the server for its namespaces. `Ok(None)` when it refuses the command
/// (NO/BAD): then it is treated as a server without NAMESPACE.
pub async fn namespaces(s: &mut ImapSession, server: &str, t: Duration) -> Result<Option<Namespaces>, ImapError> {
    let what = "NAMESPACE";
    let lost = |e: std::io::Error| ImapError::Lost {
        server: server.into(),
        what: what.into(),
        detail: e.to_string(),
    };
    let protocol = |detail: String| ImapError::Protocol {
        server: server.into(),
        what: what.into(),
        detail,
    };
    timed(t, server, what, async {
        let stream = s.get_mut();
        stream
            .write_all(format!("{TAG} NAMESPACE\r\n").as_bytes())
            .await
            .map_err(lost)?;
        stream.flush().await.map_err(lost)?;
        let mut found = None;
        for _ in 0..MAX_LINES {
            let line = read_response(stream).await.map_err(lost)?.ok_or_else(|| {
                protocol(format!("an answer line longer than {MAX_RESPONSE} bytes"))
            })?;
            if line.len() >= 12 && line[..12].eq_ignore_ascii_case(b"* NAMESPACE ") {
                found = Some(namespace::parse(&line[12..]).map_err(|e| protocol(e.to_string()))?);
            } else if line.len() > TAG.len() && line.starts_with(TAG.as_bytes()) && line[TAG.len()] == b' ' {
                let status = String::from_utf8_lossy(&line[TAG.len() + 1..]);
                if status.to_ascii_uppercase().starts_with("OK") {
                    debug!(%server, ?found, "namespaces");
                    return Ok(found);
                }
                warn!(%server, answer = %crate::net::server_quote(status.trim_end()), "NAMESPACE refused; folders are named from the top of the hierarchy");
                return Ok(None);
            }
        }
        Err(protocol(format!("no tagged answer after {MAX_LINES} lines")))
    })
    .await
}

/// One answer line with its literals inline (`{N}` CRLF, then N bytes), read byte
/// by byte so nothing after it is consumed; `None` when longer than the bound.
async fn read_response<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> std::io::Result<Option<Vec<u8>>> {
    let mut out = Vec::with_capacity(256);
    loop {
        let b = s.read_u8().await?;
        out.push(b);
        if out.len() > MAX_RESPONSE {
            return Ok(None);
        }
        if b != b'\n' {
            continue;
        }
        match literal_length(&out) {
            Some(n) if out.len() + n <= MAX_RESPONSE => {
                let start = out.len();
                out.resize(start + n, 0);
                s.read_exact(&mut out[start..]).await?;
            }
            Some(_) => return Ok(None),
            None => return Ok(Some(out)),
        }
    }
}

/// The N of a line that ends with `{N}` CRLF.
fn literal_length(line: &[u8]) -> Option<usize> {
    let body = line.strip_suffix(b"}\r\n")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    let digits = &body[open + 1..];
    if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answer_lines_are_read_with_their_literals() {
        let input: &[u8] = b"* NAMESPACE (({6}\r\nINBOX. \".\")) NIL NIL\r\nMVNS OK done\r\nNEXT";
        let mut r = input;
        let first = read_response(&mut r).await.unwrap().unwrap();
        assert_eq!(first, b"* NAMESPACE (({6}\r\nINBOX. \".\")) NIL NIL\r\n");
        assert_eq!(read_response(&mut r).await.unwrap().unwrap(), b"MVNS OK done\r\n");
        assert_eq!(r, b"NEXT", "nothing after the answer is consumed");
        let huge = b"* NAMESPACE (({999999}\r\n";
        assert_eq!(read_response(&mut &huge[..]).await.unwrap(), None);
        assert_eq!(literal_length(b"x {12}\r\n"), Some(12));
        assert_eq!(literal_length(b"x {}\r\n"), None);
        assert_eq!(literal_length(b"x 12}\r\n"), None);
    }
}
