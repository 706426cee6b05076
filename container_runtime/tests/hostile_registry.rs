//! The image store against a hostile registry: an axum server on an
//! ephemeral loopback port speaking enough of the distribution API (`/v2/`,
//! manifests, blobs) for a pull, serving a gzip bomb, an endless manifest, a
//! layer longer than its descriptor, a descriptor of size 0 over a big blob,
//! a descriptor above the layer cap, an image above the store quota, and a
//! token endpoint that answers forever.
//! Every pull is refused with an error naming the limit and the image, the
//! process's memory and the store's disk stay bounded, nothing half-pulled is
//! left, and a good image from the same server still pulls afterwards.
#![cfg(target_os = "linux")]

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use container_runtime::youki::image::{limit_names, ImageError};
use container_runtime::youki::{ImageLimits, ImageStore, ImageStoreConfig, PullPolicy};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

const MIB: u64 = 1 << 20;
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The most a pull may take of the process's memory in these tests.
const MEMORY_BOUND: u64 = 96 * MIB;
/// Limit on one pull here, so that refusals are quick.
const PULL_DEADLINE: Duration = Duration::from_secs(60);

/// What the registry answers for a blob.
#[derive(Clone)]
enum Blob {
    /// These bytes.
    Bytes(Bytes),
    /// These bytes, then zeros forever.
    Endless(Bytes),
}

/// What the registry answers for a manifest.
#[derive(Clone)]
enum Manifest {
    Json(Bytes),
    /// `[` forever, without a length.
    Endless,
}

/// Bearer-token auth of the registry: `/v2/` asks for a token from `/token`.
#[derive(Clone)]
enum Token {
    /// `/token` answers this token, which every other request must carry.
    Valid(&'static str),
    /// `/token` answers forever.
    Endless,
}

#[derive(Default)]
struct Registry {
    token: Option<Token>,
    manifests: HashMap<String, Manifest>,
    blobs: HashMap<String, Blob>,
    /// Blob requests served, by digest.
    blob_requests: std::sync::Mutex<HashMap<String, usize>>,
    requests: AtomicUsize,
}

fn sha(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).expect("gzip in memory");
    enc.finish().expect("gzip in memory")
}

/// A tar of regular files.
fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, path, *data).expect("tar in memory");
    }
    b.into_inner().expect("tar in memory")
}

/// A gzip bomb: a layer of one file of `unpacked` zero bytes, about a
/// thousandth of that compressed. Built from concatenated gzip members (a
/// header, then the same member of 8 MiB of zeros again and again), which is
/// what a multi-member gzip stream is, without compressing a gigabyte here.
fn gzip_bomb(unpacked: u64) -> Vec<u8> {
    let chunk = 8 * MIB;
    assert_eq!(unpacked % chunk, 0);
    let mut header = tar::Header::new_gnu();
    header.set_path("zeros").expect("path");
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(1_600_000_000);
    header.set_size(unpacked);
    header.set_cksum();
    let mut bomb = gzip(header.as_bytes());
    let zeros = gzip(&vec![0u8; chunk as usize]);
    for _ in 0..unpacked / chunk {
        bomb.extend_from_slice(&zeros);
    }
    // The end of the archive: two zero blocks.
    bomb.extend_from_slice(&gzip(&[0u8; 1024]));
    bomb
}

fn descriptor(media_type: &str, digest: &str, size: u64) -> serde_json::Value {
    serde_json::json!({"mediaType": media_type, "digest": digest, "size": size})
}

fn manifest_json(config: serde_json::Value, layers: Vec<serde_json::Value>) -> Bytes {
    Bytes::from(
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config,
            "layers": layers,
        }))
        .expect("manifest json"),
    )
}

impl Registry {
    /// Adds `name:1` with a config listing `diff_ids` and the given layers
    /// (descriptor size, blob served).
    fn image(&mut self, name: &str, diff_ids: &[String], layers: Vec<(String, u64, Blob)>) {
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/hello"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .expect("config json");
        let config_digest = sha(&config);
        let config_desc = descriptor(OCI_CONFIG, &config_digest, config.len() as u64);
        self.blobs
            .insert(config_digest, Blob::Bytes(Bytes::from(config)));
        let mut descs = Vec::new();
        for (digest, size, blob) in layers {
            descs.push(descriptor(OCI_LAYER_GZIP, &digest, size));
            self.blobs.insert(digest, blob);
        }
        self.manifests.insert(
            format!("{name}/manifests/1"),
            Manifest::Json(manifest_json(config_desc, descs)),
        );
    }

    /// A valid image with one file, `/hello`.
    fn good_image(&mut self, name: &str) {
        let tar = tar_of(&[("hello", b"hello from a tiny image\n")]);
        let layer = gzip(&tar);
        let digest = sha(&layer);
        let size = layer.len() as u64;
        self.image(
            name,
            &[sha(&tar)],
            vec![(digest, size, Blob::Bytes(Bytes::from(layer)))],
        );
    }

    fn blob_requests(&self, digest: &str) -> usize {
        self.blob_requests
            .lock()
            .map(|m| m.get(digest).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

fn endless(prefix: Bytes, fill: u8) -> Body {
    let filler = Bytes::from(vec![fill; 64 << 10]);
    let tail = futures::stream::repeat(filler).map(Ok::<_, std::io::Error>);
    let head = futures::stream::once(async move { Ok::<_, std::io::Error>(prefix) });
    Body::from_stream(head.chain(tail))
}

async fn serve(State(reg): State<Arc<Registry>>, req: Request) -> Response {
    reg.requests.fetch_add(1, Ordering::Relaxed);
    let path = req.uri().path().to_owned();
    if let Some(token) = &reg.token {
        if path == "/token" {
            return match token {
                Token::Valid(t) => Body::from(format!(r#"{{"token":"{t}"}}"#)).into_response(),
                Token::Endless => {
                    endless(Bytes::from_static(b"{\"token\":\""), b'a').into_response()
                }
            };
        }
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok());
        let accepted =
            matches!(token, Token::Valid(t) if presented == Some(&format!("Bearer {t}")));
        if !accepted {
            let host = req
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("127.0.0.1");
            let challenge = format!(r#"Bearer realm="http://{host}/token",service="hostile""#);
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, challenge)],
            )
                .into_response();
        }
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if rest.is_empty() {
        return (StatusCode::OK, "{}").into_response();
    }
    if let Some(manifest) = reg.manifests.get(rest) {
        let body = match manifest {
            Manifest::Json(json) => Body::from(json.clone()),
            Manifest::Endless => endless(Bytes::from_static(b"{\"schemaVersion\":2,\"x\":"), b'['),
        };
        return ([(header::CONTENT_TYPE, OCI_MANIFEST)], body).into_response();
    }
    if let Some((_, digest)) = rest.split_once("/blobs/") {
        if let Ok(mut counts) = reg.blob_requests.lock() {
            *counts.entry(digest.to_owned()).or_default() += 1;
        }
        return match reg.blobs.get(digest) {
            Some(Blob::Bytes(b)) => Body::from(b.clone()).into_response(),
            Some(Blob::Endless(prefix)) => endless(prefix.clone(), 0).into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        };
    }
    StatusCode::NOT_FOUND.into_response()
}

/// Serves `reg` on an ephemeral loopback port; returns `HOST:PORT`.
async fn start(reg: Arc<Registry>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the hostile registry");
    let addr = listener.local_addr().expect("its address");
    let app = Router::new().fallback(serve).with_state(reg);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("hostile registry stopped: {e}");
        }
    });
    format!("127.0.0.1:{}", addr.port())
}

fn store(dir: &Path, registry: &str, limits: ImageLimits) -> ImageStore {
    let mut cfg = ImageStoreConfig::for_test(dir.join("images"));
    cfg.insecure_registries = vec![registry.to_owned()];
    cfg.pull_policy = PullPolicy::IfNotPresent;
    cfg.max_cache_bytes = limits.store_quota_bytes;
    cfg.limits = limits;
    ImageStore::new(cfg).expect("open the image store")
}

/// The process's resident and peak resident memory, bytes.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or_else(|| panic!("{name} missing from /proc/self/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Bytes of the regular files under `dir`, and their paths.
fn files_under(dir: &Path) -> (u64, Vec<String>) {
    let mut total = 0;
    let mut paths = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += meta.len();
                paths.push(entry.path().display().to_string());
            }
        }
    }
    (total, paths)
}

/// Asserts that the store holds nothing but its index (and `keep`'s files).
fn assert_nothing_left(images: &Path, keep_bytes: u64, what: &str) {
    let (_, paths) = files_under(&images.join("tmp"));
    assert!(paths.is_empty(), "{what}: temporary files left: {paths:?}");
    let (total, paths) = files_under(images);
    let index = std::fs::metadata(images.join("index.json")).map_or(0, |m| m.len());
    assert!(
        total <= keep_bytes + index,
        "{what}: the store holds {total} bytes ({keep_bytes} expected besides its index): {paths:?}"
    );
}

/// Pulls `reference` expecting a refusal; checks memory and returns the error.
async fn refused(store: &ImageStore, reference: &str) -> ImageError {
    let (rss_before, _) = memory();
    let result = tokio::time::timeout(PULL_DEADLINE, store.ensure(reference))
        .await
        .unwrap_or_else(|_| panic!("pulling {reference} did not end within {PULL_DEADLINE:?}"));
    let (_, peak) = memory();
    assert!(
        peak <= rss_before + MEMORY_BOUND,
        "pulling {reference}: peak memory {peak} bytes, {} MiB above the {rss_before} before",
        (peak - rss_before) / MIB
    );
    match result {
        Err(err) => {
            let message = err.to_string();
            assert!(
                message.contains(reference),
                "the error names the image {reference}: {message}"
            );
            err
        }
        Ok(image) => panic!("pulling {reference} succeeded: {:?}", image.rootfs),
    }
}

fn assert_limit(err: &ImageError, limit: &str) {
    match err {
        ImageError::LimitExceeded { hit, .. } => {
            assert_eq!(hit.limit, limit, "{err}");
            assert!(err.to_string().contains(limit), "{err}");
        }
        other => panic!("expected the limit {limit}, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_pulls_are_refused_with_bounded_memory_and_disk_and_the_store_goes_on() {
    let unpacked_cap = 16 * MIB;
    let layer_cap = 8 * MIB;
    let limits = ImageLimits {
        max_layer_bytes: layer_cap,
        max_layer_unpacked_bytes: unpacked_cap,
        ..ImageLimits::default()
    };
    let mut reg = Registry::default();

    // (a) A gzip bomb: 2 MiB compressed, 2 GiB unpacked.
    let bomb = gzip_bomb(2048 * MIB);
    assert!(bomb.len() as u64 <= 2 * MIB, "bomb of {} bytes", bomb.len());
    let bomb_digest = sha(&bomb);
    let bomb_size = bomb.len() as u64;
    reg.image(
        "hostile/bomb",
        &[],
        vec![(
            bomb_digest.clone(),
            bomb_size,
            Blob::Bytes(Bytes::from(bomb)),
        )],
    );
    // (b) An endless manifest.
    reg.manifests
        .insert("hostile/endless/manifests/1".into(), Manifest::Endless);
    // (c) A layer that goes on past its descriptor's size (a valid layer,
    // then zeros forever).
    let real = gzip(&tar_of(&[("f", b"1")]));
    let real_size = real.len() as u64;
    reg.image(
        "hostile/longer",
        &[],
        vec![(sha(&real), real_size, Blob::Endless(Bytes::from(real)))],
    );
    // (d) A descriptor of size 0 over a blob without end.
    reg.image(
        "hostile/zero",
        &[],
        vec![(sha(b"anything"), 0, Blob::Endless(Bytes::from_static(b"x")))],
    );
    // (e) A descriptor above the layer cap: refused before any download.
    let huge_digest = sha(b"huge");
    reg.image(
        "hostile/huge",
        &[],
        vec![(huge_digest.clone(), 100 << 30, Blob::Endless(Bytes::new()))],
    );
    reg.good_image("tiny/good");
    let reg = Arc::new(reg);
    let addr = start(reg.clone()).await;
    let dir = TempDir::new().expect("tempdir");
    let images = dir.path().join("images");
    let store = store(dir.path(), &addr, limits.clone());

    let err = refused(&store, &format!("{addr}/hostile/bomb:1")).await;
    assert_limit(&err, limit_names::LAYER_UNPACKED);
    assert!(err.to_string().contains(&unpacked_cap.to_string()), "{err}");
    assert_nothing_left(&images, 0, "after the gzip bomb");

    let err = refused(&store, &format!("{addr}/hostile/endless:1")).await;
    assert_limit(&err, limit_names::MANIFEST);
    assert_nothing_left(&images, 0, "after the endless manifest");

    let err = refused(&store, &format!("{addr}/hostile/longer:1")).await;
    let message = err.to_string();
    assert!(
        message.contains(&format!(
            "larger than the {real_size} bytes its descriptor declares"
        )),
        "{message}"
    );
    assert_nothing_left(&images, 0, "after the layer longer than its descriptor");

    let err = refused(&store, &format!("{addr}/hostile/zero:1")).await;
    let message = err.to_string();
    assert!(
        message.contains("larger than the 0 bytes its descriptor declares"),
        "{message}"
    );
    assert_nothing_left(&images, 0, "after the descriptor of size 0");

    let err = refused(&store, &format!("{addr}/hostile/huge:1")).await;
    assert_limit(&err, limit_names::LAYER);
    assert_eq!(
        reg.blob_requests(&huge_digest),
        0,
        "a descriptor above the cap is refused before its download"
    );
    assert_nothing_left(&images, 0, "after the descriptor above the cap");

    // The node goes on serving: a good image from the same registry pulls.
    let good = format!("{addr}/tiny/good:1");
    let image = tokio::time::timeout(PULL_DEADLINE, store.ensure(&good))
        .await
        .expect("the good pull ends")
        .unwrap_or_else(|e| panic!("pulling {good} after the refusals: {e}"));
    let hello = std::fs::read(image.rootfs.join("hello")).expect("/hello in the rootfs");
    assert_eq!(hello, b"hello from a tiny image\n");
    assert_eq!(store.cached_bytes(), image.size_bytes);
    let (_, tmp) = files_under(&images.join("tmp"));
    assert!(tmp.is_empty(), "temporary files left: {tmp:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_above_the_store_quota_is_refused_and_leaves_nothing() {
    let mut reg = Registry::default();
    // A layer of 256 KiB of incompressible bytes: too big for a 64 KiB store.
    let noise: Vec<u8> = (0..8192u32)
        .flat_map(|i| Sha256::digest(i.to_le_bytes()))
        .collect();
    let tar = tar_of(&[("noise", &noise)]);
    let layer = gzip(&tar);
    let digest = sha(&layer);
    let size = layer.len() as u64;
    assert!(size > 128 << 10, "incompressible: {size} bytes");
    reg.image(
        "big/image",
        &[sha(&tar)],
        vec![(digest.clone(), size, Blob::Bytes(Bytes::from(layer)))],
    );
    reg.good_image("tiny/good");
    let reg = Arc::new(reg);
    let addr = start(reg.clone()).await;
    let dir = TempDir::new().expect("tempdir");
    let images = dir.path().join("images");

    // The blobs alone do not fit: refused before any layer download.
    let limits = ImageLimits {
        store_quota_bytes: 64 << 10,
        ..ImageLimits::default()
    };
    let store_small = store(dir.path(), &addr, limits);
    let reference = format!("{addr}/big/image:1");
    let err = refused(&store_small, &reference).await;
    match &err {
        ImageError::QuotaExceeded { hit, .. } => {
            assert_eq!(hit.quota, 64 << 10);
            assert!(hit.needed >= size, "{err}");
        }
        other => panic!("expected the store quota, got {other}"),
    }
    assert!(err.to_string().contains(limit_names::STORE_QUOTA), "{err}");
    assert_eq!(reg.blob_requests(&digest), 0, "refused before downloading");
    assert_nothing_left(&images, 0, "after the quota refusal");
    drop(store_small);

    // The blobs fit but the unpacked layer does not: refused while unpacking.
    let limits = ImageLimits {
        store_quota_bytes: size + (64 << 10),
        ..ImageLimits::default()
    };
    let store_mid = store(dir.path(), &addr, limits);
    let err = refused(&store_mid, &reference).await;
    assert!(
        matches!(&err, ImageError::QuotaExceeded { .. }),
        "expected the store quota while unpacking, got {err}"
    );
    assert_nothing_left(&images, 0, "after the quota refusal while unpacking");

    // A small image still fits in the same store.
    let good = format!("{addr}/tiny/good:1");
    let image = store_mid
        .ensure(&good)
        .await
        .unwrap_or_else(|e| panic!("pulling {good}: {e}"));
    assert!(image.rootfs.join("hello").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_are_fetched_and_an_endless_token_response_is_refused() {
    // A registry that wants a bearer token: the good image pulls with it.
    let mut reg = Registry {
        token: Some(Token::Valid("t0k3n")),
        ..Registry::default()
    };
    reg.good_image("tiny/good");
    let addr = start(Arc::new(reg)).await;
    let dir = TempDir::new().expect("tempdir");
    let good = format!("{addr}/tiny/good:1");
    let image = store(dir.path(), &addr, ImageLimits::default())
        .ensure(&good)
        .await
        .unwrap_or_else(|e| panic!("pulling {good} with a bearer token: {e}"));
    assert!(image.rootfs.join("hello").is_file());

    // Its token endpoint streaming forever: refused, memory bounded.
    let mut reg = Registry {
        token: Some(Token::Endless),
        ..Registry::default()
    };
    reg.good_image("tiny/good");
    let addr = start(Arc::new(reg)).await;
    let dir = TempDir::new().expect("tempdir");
    let store = store(dir.path(), &addr, ImageLimits::default());
    let err = refused(&store, &format!("{addr}/tiny/good:1")).await;
    assert!(
        err.to_string().contains("token response") && err.to_string().contains("larger than"),
        "{err}"
    );
    assert_nothing_left(&dir.path().join("images"), 0, "after the endless token");
}
