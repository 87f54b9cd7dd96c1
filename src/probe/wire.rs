//! The few lines `probe` says to each port: the greeting, IMAP `CAPABILITY` and
//! `STARTTLS`, POP3 `CAPA` and `STLS`, and a polite goodbye. Every line is bounded
//! in length and every wait in time by the caller.

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

/// The longest line read from a server.
const MAX_LINE: u64 = 16 * 1024;
/// The most lines of one answer.
const MAX_LINES: usize = 1000;

/// A conversation failed: what was being done, and why.
#[derive(Debug)]
pub struct WireError(pub String);

type Result<T> = std::result::Result<T, WireError>;

async fn line<S: AsyncRead + Unpin>(r: &mut BufReader<S>, what: &str) -> Result<String> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let n = (&mut *r)
        .take(MAX_LINE)
        .read_until(b'\n', &mut buf)
        .await
        .map_err(|e| WireError(format!("{what}: {e}")))?;
    if n == 0 {
        return Err(WireError(format!("{what}: the server closed the connection")));
    }
    if !buf.ends_with(b"\n") {
        return Err(WireError(format!("{what}: a line longer than {MAX_LINE} bytes")));
    }
    Ok(String::from_utf8_lossy(&buf).trim_end().to_string())
}

async fn send<S: AsyncRead + AsyncWrite + Unpin>(r: &mut BufReader<S>, text: &str) -> Result<()> {
    let w = r.get_mut();
    w.write_all(format!("{text}\r\n").as_bytes())
        .await
        .map_err(|e| WireError(format!("sending {text}: {e}")))?;
    w.flush().await.map_err(|e| WireError(format!("sending {text}: {e}")))
}

/// The capability words of an IMAP `* CAPABILITY …` line or `[CAPABILITY …]` code.
pub fn imap_capability_words(line: &str) -> Option<Vec<String>> {
    let upper = line.to_ascii_uppercase();
    let at = upper.find("CAPABILITY ")? + "CAPABILITY ".len();
    let rest = &line[at..];
    let rest = rest.split(']').next().unwrap_or(rest);
    Some(rest.split_whitespace().map(|w| w.to_ascii_uppercase()).collect())
}

/// Reads the greeting (must be `* OK`).
pub async fn imap_greeting<S: AsyncRead + Unpin>(r: &mut BufReader<S>) -> Result<String> {
    let g = line(r, "reading the greeting").await?;
    if !g.starts_with("* OK") && !g.starts_with("* PREAUTH") {
        return Err(WireError(format!(
            "not an IMAP greeting: {}",
            crate::net::server_quote(&g)
        )));
    }
    Ok(g)
}

/// `CAPABILITY`: the words the server lists.
pub async fn imap_capabilities<S: AsyncRead + AsyncWrite + Unpin>(
    r: &mut BufReader<S>,
    tag: &str,
) -> Result<Vec<String>> {
    send(r, &format!("{tag} CAPABILITY")).await?;
    let mut caps = Vec::new();
    for _ in 0..MAX_LINES {
        let l = line(r, "CAPABILITY").await?;
        if let Some(rest) = l.strip_prefix(&format!("{tag} ")) {
            if !rest.to_ascii_uppercase().starts_with("OK") {
                return Err(WireError(format!(
                    "CAPABILITY refused: {}",
                    crate::net::server_quote(rest)
                )));
            }
            return Ok(caps);
        }
        if l.starts_with("* ") {
            if let Some(words) = imap_capability_words(&l) {
                caps.extend(words);
            }
        }
    }
    Err(WireError("CAPABILITY: no end to the answer".into()))
}

/// `STARTTLS`: whether the server agreed.
pub async fn imap_starttls<S: AsyncRead + AsyncWrite + Unpin>(r: &mut BufReader<S>, tag: &str) -> Result<bool> {
    send(r, &format!("{tag} STARTTLS")).await?;
    for _ in 0..MAX_LINES {
        let l = line(r, "STARTTLS").await?;
        if let Some(rest) = l.strip_prefix(&format!("{tag} ")) {
            return Ok(rest.to_ascii_uppercase().starts_with("OK"));
        }
    }
    Err(WireError("STARTTLS: no end to the answer".into()))
}

/// Ends an IMAP conversation (errors ignored: the probe is done).
pub async fn imap_logout<S: AsyncRead + AsyncWrite + Unpin>(r: &mut BufReader<S>) {
    let _ = send(r, "z LOGOUT").await;
}

/// Reads the greeting (must be `+OK`); whether it offers APOP (a `<…>` timestamp).
pub async fn pop3_greeting<S: AsyncRead + Unpin>(r: &mut BufReader<S>) -> Result<(String, bool)> {
    let g = line(r, "reading the greeting").await?;
    if !g.starts_with("+OK") {
        return Err(WireError(format!(
            "not a POP3 greeting: {}",
            crate::net::server_quote(&g)
        )));
    }
    let apop = crate::pop3::proto::apop_timestamp(&g).is_some();
    Ok((g, apop))
}

/// `CAPA`: the capability lines, the first word of each upper-cased, with its
/// arguments (`SASL PLAIN LOGIN`); empty when the server has no CAPA.
pub async fn pop3_capa<S: AsyncRead + AsyncWrite + Unpin>(r: &mut BufReader<S>) -> Result<Vec<String>> {
    send(r, "CAPA").await?;
    let first = line(r, "CAPA").await?;
    if !first.starts_with("+OK") {
        return Ok(Vec::new());
    }
    let mut caps = Vec::new();
    for _ in 0..MAX_LINES {
        let l = line(r, "CAPA").await?;
        if l == "." {
            return Ok(caps);
        }
        let mut words = l.split_whitespace();
        if let Some(w) = words.next() {
            let rest: Vec<&str> = words.collect();
            caps.push(if rest.is_empty() {
                w.to_ascii_uppercase()
            } else {
                format!("{} {}", w.to_ascii_uppercase(), rest.join(" "))
            });
        }
    }
    Err(WireError("CAPA: no end to the answer".into()))
}

/// `STLS`: whether the server agreed.
pub async fn pop3_stls<S: AsyncRead + AsyncWrite + Unpin>(r: &mut BufReader<S>) -> Result<bool> {
    send(r, "STLS").await?;
    Ok(line(r, "STLS").await?.starts_with("+OK"))
}

/// Ends a POP3 conversation.
pub async fn pop3_quit<S: AsyncRead + AsyncWrite + Unpin>(r: &mut BufReader<S>) {
    let _ = send(r, "QUIT").await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_words_come_from_lines_and_codes() {
        assert_eq!(
            imap_capability_words("* CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN"),
            Some(vec!["IMAP4REV1".into(), "STARTTLS".into(), "AUTH=PLAIN".into()])
        );
        assert_eq!(
            imap_capability_words("* OK [CAPABILITY IMAP4rev1 IDLE] Dovecot ready."),
            Some(vec!["IMAP4REV1".into(), "IDLE".into()])
        );
        assert_eq!(imap_capability_words("* OK ready"), None);
    }

    #[tokio::test]
    async fn an_endless_or_huge_answer_is_an_error() {
        let huge = vec![b'a'; 20_000];
        let mut r = BufReader::new(std::io::Cursor::new(huge));
        assert!(line(&mut r, "x").await.is_err());
        let mut r = BufReader::new(std::io::Cursor::new(b"+OK hi".to_vec()));
        assert!(line(&mut r, "x").await.is_err(), "a line without its end");
    }
}
