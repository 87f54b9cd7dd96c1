//! Packs in S3-compatible object storage (AWS S3, Garage, MinIO, Ceph) through the
//! `object_store` crate: path-style requests, SigV4, retries with backoff on 5xx,
//! timeouts and dropped connections (object_store's retry loop, bounded in count and
//! time).
//!
//! Credentials never come from argv or the archive's config: the standard AWS
//! environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`), else the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`
//! or `~/.aws/credentials`, profile `AWS_PROFILE` or `default`).
//!
//! Requests run on a small tokio runtime owned by the store; a call waits on a
//! channel, so it works from any thread that may block (the archive's writer thread,
//! `spawn_blocking`, a plain CLI thread).

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use serde::{Deserialize, Serialize};

use super::{BlobStore, BlobStoreError, PackName, Result, StoredPack};

/// Where the packs of an archive are kept in S3, as its config records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Config {
    pub bucket: String,
    /// Key prefix inside the bucket ("" for the bucket's root), without slashes at
    /// either end.
    #[serde(default)]
    pub prefix: String,
    /// The service's URL (`http://127.0.0.1:3900`); `None` for AWS itself.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default = "default_region")]
    pub region: String,
}

fn default_region() -> String {
    "us-east-1".into()
}

impl S3Config {
    /// Reads `s3://BUCKET/PREFIX` (the prefix may be empty).
    pub fn from_url(url: &str, endpoint: Option<String>, region: Option<String>) -> Result<S3Config> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| BlobStoreError::Config(format!("{url:?} is not an s3://BUCKET/PREFIX address")))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid_bucket {
            return Err(BlobStoreError::Config(format!(
                "{bucket:?} is not an S3 bucket name (3 to 63 lowercase letters, digits, '-' or '.')"
            )));
        }
        if let Some(e) = &endpoint {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(BlobStoreError::Config(format!(
                    "the S3 endpoint {e:?} must start with http:// or https://"
                )));
            }
        }
        Ok(S3Config {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            endpoint,
            region: region.unwrap_or_else(default_region),
        })
    }

    /// `s3://bucket/prefix`.
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }
}

/// Static credentials found in the environment or the shared credentials file.
struct Credentials {
    key_id: String,
    secret: String,
    token: Option<String>,
}

fn credentials() -> Result<Credentials> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let (Some(key_id), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        return Ok(Credentials {
            key_id,
            secret,
            token: env("AWS_SESSION_TOKEN"),
        });
    }
    let file = env("AWS_SHARED_CREDENTIALS_FILE")
        .map(std::path::PathBuf::from)
        .or_else(|| directories::BaseDirs::new().map(|d| d.home_dir().join(".aws/credentials")));
    let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".into());
    let missing = || {
        BlobStoreError::Config(
            "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or put them in \
             ~/.aws/credentials (or the file AWS_SHARED_CREDENTIALS_FILE names)"
                .into(),
        )
    };
    let text = file.and_then(|f| std::fs::read_to_string(f).ok()).ok_or_else(missing)?;
    let section = credentials_profile(&text, &profile);
    match (section.get("aws_access_key_id"), section.get("aws_secret_access_key")) {
        (Some(k), Some(s)) => Ok(Credentials {
            key_id: k.clone(),
            secret: s.clone(),
            token: section.get("aws_session_token").cloned(),
        }),
        _ => Err(BlobStoreError::Config(format!(
            "the S3 credentials file has no aws_access_key_id and aws_secret_access_key for profile {profile:?}"
        ))),
    }
}

/// The `key = value` lines of one `[profile]` section of an AWS credentials file.
fn credentials_profile(text: &str, profile: &str) -> std::collections::HashMap<String, String> {
    let mut out = std::collections::HashMap::new();
    let mut inside = false;
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == profile;
        } else if inside {
            if let Some((k, v)) = line.split_once('=') {
                out.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
    }
    out
}

/// Retries: up to 10 over at most 2 minutes, backoff 100 ms doubling to 5 s.
fn retry_config() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        max_retries: 10,
        retry_timeout: Duration::from_secs(120),
    }
}

/// Packs in one bucket under one prefix.
pub struct S3Store {
    store: Arc<AmazonS3>,
    config: S3Config,
    runtime: tokio::runtime::Runtime,
}

impl S3Store {
    /// Connects lazily: nothing is sent until the first request.
    pub fn new(config: &S3Config) -> Result<S3Store> {
        // reqwest is built without a TLS provider of its own: ours is ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let creds = credentials()?;
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(creds.key_id)
            .with_secret_access_key(creds.secret)
            .with_virtual_hosted_style_request(false)
            .with_retry(retry_config())
            .with_client_options(
                ClientOptions::new()
                    .with_timeout(Duration::from_secs(60))
                    .with_connect_timeout(Duration::from_secs(10))
                    .with_allow_http(true),
            );
        if let Some(t) = creds.token {
            b = b.with_token(t);
        }
        if let Some(e) = &config.endpoint {
            b = b.with_endpoint(e);
        }
        let store = b.build().map_err(|e| BlobStoreError::Config(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("mailvault-s3")
            .enable_all()
            .build()
            .map_err(|e| BlobStoreError::Config(format!("cannot start the S3 client's runtime: {e}")))?;
        Ok(S3Store {
            store: Arc::new(store),
            config: config.clone(),
            runtime,
        })
    }

    fn path(&self, name: &PackName) -> ObjectPath {
        self.child(&name.object_path())
    }

    fn child(&self, rel: &str) -> ObjectPath {
        if self.config.prefix.is_empty() {
            ObjectPath::from(rel)
        } else {
            ObjectPath::from(format!("{}/{rel}", self.config.prefix))
        }
    }

    /// Runs `fut` on the store's runtime and waits for it from this thread; a
    /// task that ended without an answer (a panic in the client) is an error.
    fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, object_store::Error>> + Send + 'static,
    ) -> Result<T, object_store::Error> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().unwrap_or_else(|_| {
            Err(object_store::Error::Generic {
                store: "S3",
                source: "the S3 client's task ended without an answer".into(),
            })
        })
    }

    fn remote(&self, op: &'static str, name: impl ToString, e: object_store::Error) -> BlobStoreError {
        BlobStoreError::Remote {
            store: self.describe(),
            op,
            name: name.to_string(),
            detail: e.to_string(),
        }
    }
}

impl BlobStore for S3Store {
    fn put(&self, name: &PackName, bytes: Vec<u8>) -> Result<()> {
        let (store, path) = (self.store.clone(), self.path(name));
        let payload = PutPayload::from(bytes);
        self.run(async move { store.put(&path, payload).await })
            .map(|_| ())
            .map_err(|e| self.remote("put", name, e))
    }

    fn read_range(&self, name: &PackName, range: Range<u64>) -> Result<Vec<u8>> {
        let (store, path, r) = (self.store.clone(), self.path(name), range.clone());
        match self.run(async move { store.get_range(&path, r).await }) {
            Ok(b) if b.len() as u64 == range.end - range.start => Ok(b.to_vec()),
            Ok(b) => Err(BlobStoreError::ShortRead {
                store: self.describe(),
                name: *name,
                start: range.start,
                end: range.end,
                size: range.start + b.len() as u64,
            }),
            Err(object_store::Error::NotFound { .. }) => Err(BlobStoreError::Missing {
                store: self.describe(),
                name: *name,
            }),
            Err(e) => Err(self.remote("read", name, e)),
        }
    }

    fn list(&self) -> Result<Vec<StoredPack>> {
        let (store, prefix) = (self.store.clone(), self.child("packs"));
        let metas = self
            .run(async move { store.list(Some(&prefix)).try_collect::<Vec<_>>().await })
            .map_err(|e| self.remote("list", "packs", e))?;
        let mut out: Vec<StoredPack> = metas
            .into_iter()
            .filter_map(|m| {
                PackName::from_object_path(m.location.as_ref()).map(|name| StoredPack { name, size: m.size })
            })
            .collect();
        out.sort_by_key(|p| p.name);
        Ok(out)
    }

    fn delete(&self, name: &PackName) -> Result<()> {
        let (store, path) = (self.store.clone(), self.path(name));
        match self.run(async move { store.delete(&path).await }) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.remote("delete", name, e)),
        }
    }

    fn is_remote(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        match &self.config.endpoint {
            Some(e) => format!("{} at {e}", self.config.url()),
            None => self.config.url(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_addresses_are_read_and_checked() {
        let c = S3Config::from_url(
            "s3://mail-archive/org/2026/",
            Some("http://127.0.0.1:3900".into()),
            None,
        )
        .unwrap();
        assert_eq!(
            (c.bucket.as_str(), c.prefix.as_str(), c.region.as_str()),
            ("mail-archive", "org/2026", "us-east-1")
        );
        assert_eq!(
            S3Config::from_url("s3://bucket", None, Some("garage".into()))
                .unwrap()
                .prefix,
            ""
        );
        for (bad, says) in [
            ("http://b/x", "not an s3://"),
            ("s3://ab/x", "not an S3 bucket name"),
            ("s3://Big_Bucket/x", "not an S3 bucket name"),
        ] {
            let e = S3Config::from_url(bad, None, None).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let e = S3Config::from_url("s3://bucket/x", Some("127.0.0.1:3900".into()), None).unwrap_err();
        assert!(e.to_string().contains("http://"), "{e}");
    }

    #[test]
    fn a_credentials_file_profile_is_read() {
        let text = "[default]\naws_access_key_id = A\naws_secret_access_key = B\n\n[other]\naws_access_key_id=C\n";
        let d = credentials_profile(text, "default");
        assert_eq!(
            (d["aws_access_key_id"].as_str(), d["aws_secret_access_key"].as_str()),
            ("A", "B")
        );
        let o = credentials_profile(text, "other");
        assert_eq!(o.get("aws_secret_access_key"), None);
    }
}
