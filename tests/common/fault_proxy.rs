//! A TCP proxy on loopback that cuts connections at random byte offsets of the
//! server-to-client stream (the first `cuts` connections it sees), then passes
//! everything through. For testing reconnect-and-resume.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::Rng;

pub struct FaultProxy {
    pub port: u16,
    stop: Arc<AtomicBool>,
    /// Connections cut so far.
    pub cut: Arc<AtomicU64>,
    accept: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Proxies to `127.0.0.1:upstream`; cuts `cuts` connections after between
    /// `min` and `max` bytes from the server.
    pub fn start(upstream: u16, cuts: u64, min: u64, max: u64, seed_name: &str) -> FaultProxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let cut = Arc::new(AtomicU64::new(0));
        let rng = Arc::new(Mutex::new(Rng::from_env(seed_name)));
        let left = Arc::new(AtomicU64::new(cuts));
        let (stop2, cut2) = (stop.clone(), cut.clone());
        let accept = std::thread::spawn(move || {
            for conn in l.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let budget = if left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
                {
                    Some(min + rng.lock().unwrap().below(max - min + 1))
                } else {
                    None
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                // client -> server: plain copy.
                std::thread::spawn(move || pump(c2, s2, None, None));
                let cut3 = cut2.clone();
                std::thread::spawn(move || pump(server, client, budget, Some(cut3)));
            }
        });
        FaultProxy {
            port,
            stop,
            cut,
            accept: Some(accept),
        }
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, budget: Option<u64>, cut: Option<Arc<AtomicU64>>) {
    let mut buf = [0u8; 16 * 1024];
    let mut sent = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut n = n;
        if let Some(b) = budget {
            if sent + n as u64 >= b {
                n = (b - sent) as usize;
                let _ = to.write_all(&buf[..n]);
                if let Some(c) = &cut {
                    c.fetch_add(1, Ordering::SeqCst);
                }
                let _ = to.shutdown(Shutdown::Both);
                let _ = from.shutdown(Shutdown::Both);
                return;
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        sent += n as u64;
    }
    let _ = to.shutdown(Shutdown::Write);
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // wake the accept loop
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// A proxy that lets at most `max` connections through at a time; any more are
/// greeted with `* BYE Too many simultaneous connections` and closed, as Gmail does.
/// Counts the refusals.
pub struct LimitProxy {
    pub port: u16,
    pub refused: Arc<AtomicU64>,
}

impl LimitProxy {
    pub fn start(upstream: u16, max: u64) -> LimitProxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let refused = Arc::new(AtomicU64::new(0));
        let active = Arc::new(AtomicU64::new(0));
        let refused2 = refused.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut client) = conn else { continue };
                if active.load(Ordering::SeqCst) >= max {
                    refused2.fetch_add(1, Ordering::SeqCst);
                    let _ = client.write_all(b"* BYE [UNAVAILABLE] Too many simultaneous connections\r\n");
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                active.fetch_add(1, Ordering::SeqCst);
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || pump(c2, s2, None, None));
                let active = active.clone();
                std::thread::spawn(move || {
                    pump(server, client, None, None);
                    active.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        LimitProxy { port, refused }
    }
}

/// A proxy that passes everything through and counts connections: how many were
/// opened, and the most open at once (what a server's connection limit sees).
pub struct CountProxy {
    pub port: u16,
    pub total: Arc<AtomicU64>,
    pub peak: Arc<AtomicU64>,
    /// Bytes the server sent, over every connection.
    pub bytes_down: Arc<AtomicU64>,
}

impl CountProxy {
    pub fn start(upstream: u16) -> CountProxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let (total, peak) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let active = Arc::new(AtomicU64::new(0));
        let (total2, peak2) = (total.clone(), peak.clone());
        let bytes_down = Arc::new(AtomicU64::new(0));
        let down = bytes_down.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                total2.fetch_add(1, Ordering::SeqCst);
                let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                peak2.fetch_max(now, Ordering::SeqCst);
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || pump(c2, s2, None, None));
                let active = active.clone();
                let down = down.clone();
                // The server's count: a connection is open until the server closes
                // it, which the client learns only after.
                std::thread::spawn(move || {
                    let (mut server, mut client) = (server, client);
                    let mut buf = [0u8; 16 * 1024];
                    while let Ok(n @ 1..) = server.read(&mut buf) {
                        down.fetch_add(n as u64, Ordering::SeqCst);
                        if client.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    active.fetch_sub(1, Ordering::SeqCst);
                    let _ = client.shutdown(Shutdown::Write);
                });
            }
        });
        CountProxy {
            port,
            total,
            peak,
            bytes_down,
        }
    }
}

/// A proxy that passes the server's bytes to the client at most `bytes_per_second`
/// (a slow link), so a test can interrupt a transfer in the middle.
pub struct SlowProxy {
    pub port: u16,
}

impl SlowProxy {
    pub fn start(upstream: u16, bytes_per_second: u64) -> SlowProxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || pump(c2, s2, None, None));
                std::thread::spawn(move || {
                    let (mut server, mut client) = (server, client);
                    let mut buf = [0u8; 4096];
                    while let Ok(n @ 1..) = server.read(&mut buf) {
                        if client.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        std::thread::sleep(std::time::Duration::from_secs_f64(n as f64 / bytes_per_second as f64));
                    }
                    let _ = client.shutdown(Shutdown::Write);
                });
            }
        });
        SlowProxy { port }
    }
}

/// A proxy for HTTP servers (S3) on loopback: of the next `faults` connections it
/// accepts, every other one answers its first request with `503 Slow Down` and
/// closes, the others are cut after a random number of bytes (up to 64 KB, either
/// direction); later connections pass through ([`HttpFaultProxy::add_faults`] arms
/// more). A client reconnects after each fault, so they come one after another.
pub struct HttpFaultProxy {
    pub port: u16,
    stop: Arc<AtomicBool>,
    left: Arc<AtomicU64>,
    /// 503 answers sent and connections cut so far.
    pub answered_503: Arc<AtomicU64>,
    pub cut: Arc<AtomicU64>,
}

impl HttpFaultProxy {
    pub fn start(upstream: u16, faults: u64, seed_name: &str) -> HttpFaultProxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let (answered_503, cut) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let rng = Arc::new(Mutex::new(Rng::from_env(seed_name)));
        let left = Arc::new(AtomicU64::new(faults));
        let (stop2, a2, c2, left2) = (stop.clone(), answered_503.clone(), cut.clone(), left.clone());
        std::thread::spawn(move || {
            for conn in l.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                let fault = left2.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
                let kind = fault.map_or(0, |n| n % 2);
                let fault = fault.is_ok();
                let budget = 1 + rng.lock().unwrap().below(64 << 10);
                let (a3, c3) = (a2.clone(), c2.clone());
                std::thread::spawn(move || match (fault, kind) {
                    (true, 0) => {
                        answer_503(client);
                        a3.fetch_add(1, Ordering::SeqCst);
                    }
                    (true, _) => {
                        if pump_both(client, upstream, Some(budget)) {
                            c3.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    (false, _) => {
                        pump_both(client, upstream, None);
                    }
                });
            }
        });
        HttpFaultProxy {
            port,
            stop,
            left,
            answered_503,
            cut,
        }
    }

    /// Arms `n` more faulty connections.
    pub fn add_faults(&self, n: u64) {
        self.left.fetch_add(n, Ordering::SeqCst);
    }
}

impl Drop for HttpFaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Reads one request head (bounded, with a timeout) and answers 503.
fn answer_503(mut client: TcpStream) {
    client.set_read_timeout(Some(std::time::Duration::from_secs(5))).ok();
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
        match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let body =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>test fault</Message></Error>";
    let _ = write!(
        client,
        "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.shutdown(Shutdown::Both);
}

/// Copies both ways between `client` and the upstream; with a budget, cuts both
/// after that many bytes in all. True when it cut.
fn pump_both(client: TcpStream, upstream: u16, budget: Option<u64>) -> bool {
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return false;
    };
    let left = Arc::new(AtomicU64::new(budget.unwrap_or(u64::MAX)));
    let did_cut = Arc::new(AtomicBool::new(false));
    let copy = |mut from: TcpStream, mut to: TcpStream, left: Arc<AtomicU64>, did_cut: Arc<AtomicBool>| {
        move || {
            let mut buf = [0u8; 16384];
            loop {
                let n = match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let before = left.fetch_sub((n as u64).min(left.load(Ordering::SeqCst)), Ordering::SeqCst);
                if (n as u64) >= before {
                    let _ = to.write_all(&buf[..before as usize]);
                    did_cut.store(true, Ordering::SeqCst);
                    break;
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
        }
    };
    let up = std::thread::spawn(copy(
        client.try_clone().unwrap(),
        server.try_clone().unwrap(),
        left.clone(),
        did_cut.clone(),
    ));
    copy(server, client, left, did_cut.clone())();
    let _ = up.join();
    did_cut.load(Ordering::SeqCst)
}
