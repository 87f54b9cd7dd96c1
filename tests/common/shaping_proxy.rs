//! A WAN between a client and a server on loopback: every byte crosses a link with
//! a one-way delay and a bandwidth, one link per direction shared by every
//! connection (parallel connections share the bandwidth, as on a real line; they
//! only hide the round trips). Chunks are timed when read: the link is busy for
//! `bytes / bandwidth`, then the chunk arrives `delay` later. What is in flight is
//! bounded, so TCP's back-pressure reaches the sender.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One direction of the link.
struct Link {
    free_at: Mutex<Instant>,
    bytes_per_second: f64,
    delay: Duration,
    /// Bytes carried so far.
    carried: AtomicU64,
}

impl Link {
    /// When a chunk of `n` bytes read now arrives at the far end.
    fn arrival(&self, n: usize) -> Instant {
        self.carried.fetch_add(n as u64, Ordering::Relaxed);
        let mut free = self.free_at.lock().unwrap();
        let start = (*free).max(Instant::now());
        *free = start + Duration::from_secs_f64(n as f64 / self.bytes_per_second);
        *free + self.delay
    }
}

pub struct ShapingProxy {
    pub port: u16,
    /// Client to server.
    up: Arc<Link>,
    /// Server to client.
    down: Arc<Link>,
}

/// The largest chunk read at once (a few TCP segments).
const CHUNK: usize = 16 * 1024;
/// Chunks in flight per direction of a connection (4 MiB: more than the
/// bandwidth-delay product of 100 Mbit/s at 50 ms).
const IN_FLIGHT: usize = 256;

impl ShapingProxy {
    /// Forwards connections to `upstream` on 127.0.0.1 over a link of `rtt` round
    /// trip and `bits_per_second` each way.
    pub fn start(upstream: u16, rtt: Duration, bits_per_second: u64) -> ShapingProxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let link = || {
            Arc::new(Link {
                free_at: Mutex::new(Instant::now()),
                bytes_per_second: bits_per_second as f64 / 8.0,
                delay: rtt / 2,
                carried: AtomicU64::new(0),
            })
        };
        let (up, down) = (link(), link());
        let (up_, down_) = (up.clone(), down.clone());
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap(), up.clone());
                pipe(server, client, down.clone());
            }
        });
        ShapingProxy {
            port,
            up: up_,
            down: down_,
        }
    }

    /// Bytes carried so far, (client to server, server to client), over every
    /// connection.
    pub fn carried(&self) -> (u64, u64) {
        (
            self.up.carried.load(Ordering::Relaxed),
            self.down.carried.load(Ordering::Relaxed),
        )
    }
}

/// Moves `from`'s bytes to `to` across `link` (a reader and a writer thread).
fn pipe(mut from: TcpStream, mut to: TcpStream, link: Arc<Link>) {
    let (tx, rx) = sync_channel::<(Instant, Vec<u8>)>(IN_FLIGHT);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; CHUNK];
        while let Ok(n @ 1..) = from.read(&mut buf) {
            if tx.send((link.arrival(n), buf[..n].to_vec())).is_err() {
                break;
            }
        }
    });
    std::thread::spawn(move || {
        for (at, bytes) in rx {
            let now = Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
            if to.write_all(&bytes).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
