//! A private Garage (S3-compatible object storage) for the S3 tests: one node or a
//! three-node cluster with replication, each an unprivileged process on 127.0.0.1
//! with free ports and its state in a temp dir; a bucket and a key made with
//! Garage's own CLI. Nodes can be stopped and started again; all are stopped when
//! dropped.
//!
//! The binary is `$MAILVAULT_GARAGE`, else `~/.cache/mailvault-garage/bin/garage`
//! (where `scripts/test.sh` installs it), else `garage` on the PATH. When it is
//! missing the test fails saying how to install it: never skipped silently.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BUCKET: &str = "mailvault-test";
pub const REGION: &str = "garage";
/// The test key (Garage's format: `GK` and 24 hex digits; a 64-hex secret).
pub const KEY_ID: &str = "GK0123456789abcdef01234567";
pub const SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Puts the test key in this process's environment (for archives opened in-process).
pub fn use_test_credentials() {
    std::env::set_var("AWS_ACCESS_KEY_ID", KEY_ID);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET);
}
const INSTALL: &str = "cargo install garage --locked --no-default-features --features lmdb,bundled-libs --root ~/.cache/mailvault-garage   (or run scripts/test.sh)";

pub fn garage_bin() -> PathBuf {
    if let Ok(p) = std::env::var("MAILVAULT_GARAGE") {
        return PathBuf::from(p);
    }
    if let Some(home) = std::env::var_os("HOME") {
        let cached = Path::new(&home).join(".cache/mailvault-garage/bin/garage");
        if cached.exists() {
            return cached;
        }
    }
    let on_path = Command::new("garage")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        on_path.is_ok_and(|s| s.success()),
        "Garage is not installed; install it with:\n  {INSTALL}"
    );
    PathBuf::from("garage")
}

struct Node {
    config: PathBuf,
    log: PathBuf,
    rpc: u16,
    s3: u16,
    child: Option<Child>,
}

pub struct Garage {
    _tmp: tempfile::TempDir,
    nodes: Vec<Node>,
    bin: PathBuf,
    pub key_id: String,
    pub secret: String,
}

impl Garage {
    /// One node, replication factor 1.
    pub fn single() -> Garage {
        Garage::start(1)
    }

    /// Three nodes in three zones, replication factor 3 (writes need two).
    pub fn cluster() -> Garage {
        Garage::start(3)
    }

    fn start(n: usize) -> Garage {
        let bin = garage_bin();
        let tmp = tempfile::tempdir().unwrap();
        let secret: String = (0..32).map(|_| format!("{:02x}", rand_byte())).collect();
        let mut nodes = Vec::new();
        for i in 0..n {
            let ports = super::dovecot::free_ports::<3>();
            let dir = tmp.path().join(format!("node{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            let config = dir.join("garage.toml");
            std::fs::write(
                &config,
                format!(
                    "metadata_dir = \"{d}/meta\"\ndata_dir = \"{d}/data\"\ndb_engine = \"lmdb\"\n\
                     replication_factor = {n}\nrpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
                     rpc_public_addr = \"127.0.0.1:{rpc}\"\nrpc_secret = \"{secret}\"\n\
                     [s3_api]\ns3_region = \"{REGION}\"\napi_bind_addr = \"127.0.0.1:{s3}\"\n\
                     root_domain = \".s3.garage.localhost\"\n[admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\n",
                    d = dir.display(),
                    rpc = ports[0],
                    s3 = ports[1],
                    admin = ports[2],
                ),
            )
            .unwrap();
            nodes.push(Node {
                log: dir.join("server.log"),
                config,
                rpc: ports[0],
                s3: ports[1],
                child: None,
            });
        }
        let mut g = Garage {
            _tmp: tmp,
            nodes,
            bin,
            key_id: String::new(),
            secret: String::new(),
        };
        for i in 0..n {
            g.start_node(i);
        }
        g.form_cluster();
        g.make_bucket_and_key();
        g
    }

    fn garage(&self, node: usize, args: &[&str]) -> std::process::Output {
        Command::new(&self.bin)
            .arg("-c")
            .arg(&self.nodes[node].config)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .expect("garage runs")
    }

    /// Runs a garage CLI command until it succeeds (the cluster settles), up to 30 s.
    fn garage_ok(&self, node: usize, args: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.garage(node, args);
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).into_owned();
            }
            assert!(
                Instant::now() < deadline,
                "garage {args:?} kept failing: {}\nserver log: {}",
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(&self.nodes[node].log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn node_id(&self, node: usize) -> String {
        let out = self.garage_ok(node, &["node", "id", "-q"]);
        out.trim().split('@').next().unwrap().to_string()
    }

    fn form_cluster(&self) {
        let ids: Vec<String> = (0..self.nodes.len()).map(|i| self.node_id(i)).collect();
        for (i, id) in ids.iter().enumerate().skip(1) {
            let peer = format!("{id}@127.0.0.1:{}", self.nodes[i].rpc);
            self.garage_ok(0, &["node", "connect", &peer]);
        }
        for (i, id) in ids.iter().enumerate() {
            let zone = format!("dc{}", i + 1);
            self.garage_ok(0, &["layout", "assign", "-z", &zone, "-c", "1G", id]);
        }
        self.garage_ok(0, &["layout", "apply", "--version", "1"]);
    }

    /// The bucket, and the fixed test key ([`KEY_ID`], [`SECRET`]) imported and
    /// allowed on it: every Garage of a test process has the same credentials, so
    /// the process's own environment can hold them.
    fn make_bucket_and_key(&mut self) {
        self.garage_ok(0, &["bucket", "create", BUCKET]);
        self.garage_ok(0, &["key", "import", "--yes", "-n", "mailvault-test", KEY_ID, SECRET]);
        self.garage_ok(
            0,
            &[
                "bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", KEY_ID,
            ],
        );
        self.key_id = KEY_ID.into();
        self.secret = SECRET.into();
    }

    /// The S3 endpoint (node 0's API).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.nodes[0].s3)
    }

    /// Port of node 0's S3 API (for a fault proxy in front of it).
    pub fn s3_port(&self) -> u16 {
        self.nodes[0].s3
    }

    /// The environment a mailvault process needs to reach this Garage.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", self.key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret.clone()),
        ]
    }

    /// `mailvault init` arguments for an archive under `prefix`, through `endpoint`.
    pub fn init_args(&self, prefix: &str, endpoint: &str) -> Vec<String> {
        vec![
            "init".into(),
            "--blobs".into(),
            format!("s3://{BUCKET}/{prefix}"),
            "--s3-endpoint".into(),
            endpoint.into(),
            "--s3-region".into(),
            REGION.into(),
        ]
    }

    pub fn start_node(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .unwrap();
        // In its own process group, with a watchdog that stops it when this test
        // process is gone (a Garage shared by a whole test binary is never dropped).
        let child = Command::new("sh")
            .arg("-c")
            .arg("\"$0\" -c \"$1\" server & g=$!; while kill -0 \"$2\" 2>/dev/null && kill -0 $g 2>/dev/null; do sleep 1; done; kill -9 $g 2>/dev/null")
            .arg(&self.bin)
            .arg(&node.config)
            .arg(std::process::id().to_string())
            .env("RUST_LOG", "garage=warn")
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("garage server starts");
        node.child = Some(child);
        let addr = format!("127.0.0.1:{}", node.s3);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "garage node {i} did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stop_node(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            // SAFETY: kill(2) on the process group this node was started in.
            unsafe {
                libc::kill(-(c.id() as i32), libc::SIGKILL);
            }
            let _ = c.wait();
        }
    }

    /// Objects and bytes stored under `prefix` in the bucket, as Garage counts them.
    pub fn bucket_info(&self) -> String {
        self.garage_ok(0, &["bucket", "info", BUCKET])
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.stop_node(i);
        }
    }
}

fn rand_byte() -> u8 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    h.finish() as u8
}
