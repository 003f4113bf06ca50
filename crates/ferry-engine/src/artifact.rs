//! Artifacts: zips, content-addressed by the sha256 of their plaintext, encrypted at rest.
//!
//! Encryption is an envelope: a fresh 256-bit data key per artifact encrypts the content with
//! AES-256-GCM in 1 MiB chunks (each chunk's nonce = a random 7-byte prefix, the chunk
//! number, and a last-chunk flag, so chunks cannot be reordered, dropped or truncated); the
//! data key is stored wrapped by a master key. The authenticated data is the content address,
//! and every read checks the tags and the plaintext's sha256. The local backend's master key
//! is a 0600 file. The S3 backend (ferry-aws) implements the same trait with SSE-KMS under the
//! pipeline's customer-managed key instead, so that target accounts read artifacts as
//! CodePipeline's do.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::digest::{Context, SHA256};
use serde_json::json;

use crate::encoding::{from_hex, hex};
use crate::model::ArtifactRef;

pub const CHUNK: usize = 1024 * 1024;
const TAG: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error(
        "artifact `{0}` failed its integrity check: it was altered, truncated or encrypted with another key"
    )]
    Integrity(String),
    #[error("{0}")]
    Backend(String),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ArtifactError {
    let context = context.into();
    move |source| ArtifactError::Io { context, source }
}

/// Where artifacts are kept.
#[async_trait]
pub trait ArtifactStore: Send + Sync {
    /// Stores the file at `path` as artifact `name`.
    async fn put(&self, name: &str, path: &Path) -> Result<ArtifactRef, ArtifactError>;
    /// Writes the plaintext of `artifact` to `dest`, after checking its integrity.
    async fn get(&self, artifact: &ArtifactRef, dest: &Path) -> Result<(), ArtifactError>;
    /// Whether every worker reads what this store holds (S3; a directory the workers share),
    /// so that an action may run on another machine than its execution's driver.
    fn shared(&self) -> bool {
        false
    }
}

/// sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<(String, u64), ArtifactError> {
    let mut file = File::open(path).map_err(io(format!("cannot read {}", path.display())))?;
    let mut ctx = Context::new(&SHA256);
    let mut buf = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(io(format!("cannot read {}", path.display())))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        ctx.update(&buf[..n]);
    }
    Ok((hex(ctx.finish().as_ref()), size))
}

/// Keys and nonces straight from the kernel's CSPRNG (`getrandom(2)`). Not aws-lc's RNG:
/// its first use seeds from CPU jitter entropy, which cost ~40 ms of CPU in every `ferry run`
/// (measured with `perf record`), a tenth of a 100-action pipeline.
fn random<const N: usize>() -> Result<[u8; N], ArtifactError> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out)
        .map_err(|e| ArtifactError::Backend(format!("no randomness from the system: {e}")))?;
    Ok(out)
}

fn key(bytes: &[u8]) -> Result<LessSafeKey, ArtifactError> {
    UnboundKey::new(&AES_256_GCM, bytes)
        .map(LessSafeKey::new)
        .map_err(|_| ArtifactError::Backend("not an AES-256 key".into()))
}

fn chunk_nonce(prefix: &[u8; 7], index: u32, last: bool) -> Nonce {
    let mut n = [0u8; NONCE_LEN];
    n[..7].copy_from_slice(prefix);
    n[7..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    Nonce::assume_unique_for_key(n)
}

/// Encrypts `src` into `dest` with a new data key; returns the data key and nonce prefix.
pub fn encrypt_file(
    src: &Path,
    dest: &Path,
    address: &str,
) -> Result<([u8; 32], [u8; 7]), ArtifactError> {
    let data_key = random::<32>()?;
    let prefix = random::<7>()?;
    let sealing = key(&data_key)?;
    let mut input = File::open(src).map_err(io(format!("cannot read {}", src.display())))?;
    let mut out = File::create(dest).map_err(io(format!("cannot write {}", dest.display())))?;
    let mut current = read_chunk(&mut input, src)?;
    let mut index: u32 = 0;
    loop {
        let next = read_chunk(&mut input, src)?;
        let last = next.is_empty();
        let mut block = current;
        sealing
            .seal_in_place_append_tag(
                chunk_nonce(&prefix, index, last),
                Aad::from(address.as_bytes()),
                &mut block,
            )
            .map_err(|_| ArtifactError::Backend("encryption failed".into()))?;
        out.write_all(&block)
            .map_err(io(format!("cannot write {}", dest.display())))?;
        if last {
            break;
        }
        current = next;
        index = index
            .checked_add(1)
            .ok_or_else(|| ArtifactError::Backend("artifact too large".into()))?;
    }
    out.sync_all()
        .map_err(io(format!("cannot write {}", dest.display())))?;
    Ok((data_key, prefix))
}

fn read_chunk(input: &mut File, path: &Path) -> Result<Vec<u8>, ArtifactError> {
    let mut buf = Vec::with_capacity(CHUNK + TAG);
    Read::by_ref(input)
        .take(CHUNK as u64)
        .read_to_end(&mut buf)
        .map_err(io(format!("cannot read {}", path.display())))?;
    Ok(buf)
}

/// Decrypts `src` into `dest`, checking every chunk and the plaintext's sha256. Reads one
/// block ahead, as encryption does, to know which chunk is the last.
pub fn decrypt_file(
    src: &Path,
    dest: &Path,
    data_key: &[u8],
    prefix: &[u8; 7],
    address: &str,
    name: &str,
) -> Result<(), ArtifactError> {
    let opening = key(data_key)?;
    let mut input = File::open(src).map_err(io(format!("cannot read {}", src.display())))?;
    let mut out = File::create(dest).map_err(io(format!("cannot write {}", dest.display())))?;
    let mut digest = Context::new(&SHA256);
    let read_block = |input: &mut File| -> Result<Vec<u8>, ArtifactError> {
        let mut block = Vec::with_capacity(CHUNK + TAG);
        Read::by_ref(input)
            .take((CHUNK + TAG) as u64)
            .read_to_end(&mut block)
            .map_err(io(format!("cannot read {}", src.display())))?;
        Ok(block)
    };
    let mut current = read_block(&mut input)?;
    let mut index: u32 = 0;
    loop {
        let next = read_block(&mut input)?;
        let last = next.is_empty();
        let plain = opening
            .open_in_place(
                chunk_nonce(prefix, index, last),
                Aad::from(address.as_bytes()),
                &mut current,
            )
            .map_err(|_| ArtifactError::Integrity(name.to_owned()))?;
        digest.update(plain);
        out.write_all(plain)
            .map_err(io(format!("cannot write {}", dest.display())))?;
        if last {
            break;
        }
        current = next;
        index = index
            .checked_add(1)
            .ok_or_else(|| ArtifactError::Integrity(name.to_owned()))?;
    }
    if hex(digest.finish().as_ref()) != address {
        return Err(ArtifactError::Integrity(name.to_owned()));
    }
    Ok(())
}

/// The local backend: ciphertext under `<dir>/<sha[0..2]>/<sha>.bin`, data keys wrapped by
/// the master key in `<dir>/master.key` (created 0600).
#[derive(Debug)]
pub struct LocalArtifacts {
    dir: PathBuf,
    master: [u8; 32],
    shared: bool,
}

impl LocalArtifacts {
    /// The same store, declared read by every worker (they run on this machine, or the
    /// directory is on a file system they share).
    #[must_use]
    pub fn shared_by_workers(mut self) -> LocalArtifacts {
        self.shared = true;
        self
    }

    pub fn open(dir: &Path) -> Result<LocalArtifacts, ArtifactError> {
        std::fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
        let key_path = dir.join("master.key");
        let master = match std::fs::read(&key_path) {
            Ok(bytes) => {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&key_path)
                    .map_err(io("cannot read the master key"))?
                    .permissions()
                    .mode();
                if mode & 0o077 != 0 {
                    return Err(ArtifactError::Backend(format!(
                        "{} is readable by other users (mode {:o}); run `chmod 600 {}`",
                        key_path.display(),
                        mode & 0o777,
                        key_path.display()
                    )));
                }
                bytes.try_into().map_err(|_| {
                    ArtifactError::Backend(format!("{} is not a 32-byte key", key_path.display()))
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                use std::os::unix::fs::OpenOptionsExt;
                let key = random::<32>()?;
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&key_path)
                    .map_err(io(format!("cannot create {}", key_path.display())))?;
                f.write_all(&key)
                    .and_then(|()| f.sync_all())
                    .map_err(io("cannot write the master key"))?;
                key
            }
            Err(e) => return Err(io(format!("cannot read {}", key_path.display()))(e)),
        };
        Ok(LocalArtifacts {
            dir: dir.to_owned(),
            master,
            shared: false,
        })
    }

    fn path_of(&self, sha: &str) -> PathBuf {
        self.dir
            .join(&sha[..2.min(sha.len())])
            .join(format!("{sha}.bin"))
    }

    fn wrap(&self, data_key: &[u8; 32], address: &str) -> Result<serde_json::Value, ArtifactError> {
        let nonce = random::<NONCE_LEN>()?;
        let mut wrapped = data_key.to_vec();
        key(&self.master)?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(format!("ferry data key {address}").as_bytes()),
                &mut wrapped,
            )
            .map_err(|_| ArtifactError::Backend("key wrapping failed".into()))?;
        Ok(json!({"wrap_nonce": hex(&nonce), "wrapped_key": hex(&wrapped)}))
    }

    fn unwrap(
        &self,
        envelope: &serde_json::Value,
        address: &str,
        name: &str,
    ) -> Result<Vec<u8>, ArtifactError> {
        let field = |k: &str| {
            envelope
                .get(k)
                .and_then(serde_json::Value::as_str)
                .and_then(from_hex)
                .ok_or_else(|| ArtifactError::Integrity(name.to_owned()))
        };
        let nonce: [u8; NONCE_LEN] = field("wrap_nonce")?
            .try_into()
            .map_err(|_| ArtifactError::Integrity(name.to_owned()))?;
        let mut wrapped = field("wrapped_key")?;
        let plain = key(&self.master)?
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(format!("ferry data key {address}").as_bytes()),
                &mut wrapped,
            )
            .map_err(|_| ArtifactError::Integrity(name.to_owned()))?;
        Ok(plain.to_vec())
    }
}

#[async_trait]
impl ArtifactStore for LocalArtifacts {
    fn shared(&self) -> bool {
        self.shared
    }

    async fn put(&self, name: &str, path: &Path) -> Result<ArtifactRef, ArtifactError> {
        let (sha, size) = sha256_file(path)?;
        let dest = self.path_of(&sha);
        let sidecar = dest.with_extension("envelope.json");
        // Same content, same address: reuse what is there.
        if let (true, Ok(text)) = (dest.exists(), std::fs::read_to_string(&sidecar))
            && let Ok(envelope) = serde_json::from_str(&text)
        {
            return Ok(ArtifactRef {
                name: name.to_owned(),
                sha256: sha,
                size,
                location: dest.display().to_string(),
                envelope,
            });
        }
        std::fs::create_dir_all(dest.parent().unwrap_or(&self.dir))
            .map_err(io("cannot create the artifact directory"))?;
        let tmp = dest.with_extension(format!("tmp{}", std::process::id()));
        let (data_key, prefix) = encrypt_file(path, &tmp, &sha)?;
        let mut envelope = self.wrap(&data_key, &sha)?;
        envelope["alg"] = json!("AES-256-GCM, 1 MiB chunks");
        envelope["nonce_prefix"] = json!(hex(&prefix));
        std::fs::write(&sidecar, envelope.to_string()).map_err(io("cannot write the envelope"))?;
        std::fs::rename(&tmp, &dest).map_err(io(format!("cannot write {}", dest.display())))?;
        Ok(ArtifactRef {
            name: name.to_owned(),
            sha256: sha,
            size,
            location: dest.display().to_string(),
            envelope,
        })
    }

    async fn get(&self, artifact: &ArtifactRef, dest: &Path) -> Result<(), ArtifactError> {
        let data_key = self.unwrap(&artifact.envelope, &artifact.sha256, &artifact.name)?;
        let prefix: [u8; 7] = artifact
            .envelope
            .get("nonce_prefix")
            .and_then(serde_json::Value::as_str)
            .and_then(from_hex)
            .and_then(|p| p.try_into().ok())
            .ok_or_else(|| ArtifactError::Integrity(artifact.name.clone()))?;
        decrypt_file(
            Path::new(&artifact.location),
            dest,
            &data_key,
            &prefix,
            &artifact.sha256,
            &artifact.name,
        )
    }
}

/// Zips the files of `root` matching `patterns` (globs with `**`), minus `excludes`,
/// deterministically: sorted, fixed timestamps, so the same files give the same sha256.
/// `discard_paths` stores every file at the top level.
pub fn zip_dir(
    root: &Path,
    patterns: &[String],
    excludes: &[String],
    discard_paths: bool,
    dest: &Path,
) -> Result<usize, ArtifactError> {
    let build = |pats: &[String]| -> Result<globset::GlobSet, ArtifactError> {
        let mut b = globset::GlobSetBuilder::new();
        for p in pats {
            let p = p.trim_start_matches("./");
            let glob = globset::GlobBuilder::new(p)
                .literal_separator(true)
                .build()
                .map_err(|e| ArtifactError::Backend(format!("artifact pattern `{p}`: {e}")))?;
            b.add(glob);
        }
        b.build().map_err(|e| ArtifactError::Backend(e.to_string()))
    };
    let include = build(patterns)?;
    let exclude = build(excludes)?;
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for entry in walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
    {
        let entry = entry
            .map_err(|e| ArtifactError::Backend(format!("cannot list {}: {e}", root.display())))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(root)
            .unwrap_or(entry.path())
            .to_string_lossy()
            .replace('\\', "/");
        if include.is_match(&rel) && !exclude.is_match(&rel) {
            let stored = if discard_paths {
                rel.rsplit('/').next().unwrap_or(&rel).to_owned()
            } else {
                rel
            };
            files.push((stored, entry.path().to_owned()));
        }
    }
    zip_entries(files, dest)
}

/// Zips the given files of `root` (paths relative to it), deterministically.
pub fn zip_files(root: &Path, relative: &[String], dest: &Path) -> Result<usize, ArtifactError> {
    let files = relative
        .iter()
        .map(|r| (r.clone(), root.join(r)))
        .filter(|(_, p)| p.is_file())
        .collect();
    zip_entries(files, dest)
}

fn zip_entries(mut files: Vec<(String, PathBuf)>, dest: &Path) -> Result<usize, ArtifactError> {
    files.sort();
    files.dedup_by(|a, b| a.0 == b.0);
    let out = File::create(dest).map_err(io(format!("cannot write {}", dest.display())))?;
    let mut zip = zip::ZipWriter::new(out);
    for (stored, path) in &files {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(io(format!("cannot read {}", path.display())))?
            .permissions()
            .mode();
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(mode & 0o777);
        zip.start_file(stored.as_str(), options)
            .map_err(|e| ArtifactError::Backend(e.to_string()))?;
        let mut f = File::open(path).map_err(io(format!("cannot read {}", path.display())))?;
        std::io::copy(&mut f, &mut zip).map_err(io(format!("cannot zip {}", path.display())))?;
    }
    zip.finish()
        .map_err(|e| ArtifactError::Backend(e.to_string()))?;
    Ok(files.len())
}

/// Extracts a zip into `dest`, refusing entries that would land outside it.
pub fn unzip(zip_path: &Path, dest: &Path) -> Result<(), ArtifactError> {
    let f = File::open(zip_path).map_err(io(format!("cannot read {}", zip_path.display())))?;
    let mut archive = zip::ZipArchive::new(f)
        .map_err(|e| ArtifactError::Backend(format!("{} is not a zip: {e}", zip_path.display())))?;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| ArtifactError::Backend(e.to_string()))?;
        let Some(rel) = entry.enclosed_name() else {
            return Err(ArtifactError::Backend(format!(
                "zip entry `{}` points outside the artifact",
                entry.name().unwrap_or_default()
            )));
        };
        let path = dest.join(rel);
        if entry.is_dir() {
            std::fs::create_dir_all(&path)
                .map_err(io(format!("cannot create {}", path.display())))?;
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(io(format!("cannot create {}", parent.display())))?;
        }
        let mut out =
            File::create(&path).map_err(io(format!("cannot write {}", path.display())))?;
        std::io::copy(&mut entry, &mut out)
            .map_err(io(format!("cannot write {}", path.display())))?;
        if let Some(mode) = entry.unix_mode() {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o777));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(size: usize) {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalArtifacts::open(&dir.path().join("artifacts")).unwrap();
        let src = dir.path().join("in.zip");
        let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&src, &data).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let art = rt.block_on(store.put("app", &src)).unwrap();
        assert_eq!(art.size, size as u64);
        let stored = std::fs::read(&art.location).unwrap();
        assert_ne!(
            &stored[..16.min(stored.len())],
            &data[..16.min(data.len())],
            "stored in clear"
        );
        let out = dir.path().join("out.zip");
        rt.block_on(store.get(&art, &out)).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), data);
    }

    #[test]
    fn round_trips_at_chunk_boundaries() {
        for size in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 2 * CHUNK + 5] {
            roundtrip(size);
        }
    }

    #[test]
    fn tampering_truncation_and_a_wrong_master_key_are_caught() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalArtifacts::open(&dir.path().join("a")).unwrap();
        let src = dir.path().join("in");
        std::fs::write(&src, vec![42u8; CHUNK + 100]).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let art = rt.block_on(store.put("app", &src)).unwrap();
        let out = dir.path().join("out");
        let original = std::fs::read(&art.location).unwrap();

        let mut flipped = original.clone();
        flipped[10] ^= 1;
        std::fs::write(&art.location, &flipped).unwrap();
        assert!(matches!(
            rt.block_on(store.get(&art, &out)),
            Err(ArtifactError::Integrity(_))
        ));

        std::fs::write(&art.location, &original[..CHUNK + TAG]).unwrap();
        assert!(
            matches!(
                rt.block_on(store.get(&art, &out)),
                Err(ArtifactError::Integrity(_))
            ),
            "truncation after a full chunk"
        );

        std::fs::write(&art.location, &original).unwrap();
        let other = LocalArtifacts::open(&dir.path().join("b")).unwrap();
        assert!(matches!(
            rt.block_on(other.get(&art, &out)),
            Err(ArtifactError::Integrity(_))
        ));
        rt.block_on(store.get(&art, &out)).unwrap();
    }

    #[test]
    fn master_key_is_private_and_same_content_has_one_address() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = LocalArtifacts::open(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join("master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let src = dir.path().join("in");
        std::fs::write(&src, b"same").unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let a = rt.block_on(store.put("x", &src)).unwrap();
        let b = rt.block_on(store.put("y", &src)).unwrap();
        assert_eq!((a.sha256.clone(), a.location), (b.sha256, b.location));
        std::fs::set_permissions(
            dir.path().join("master.key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert!(
            LocalArtifacts::open(dir.path())
                .unwrap_err()
                .to_string()
                .contains("chmod 600")
        );
    }

    #[test]
    fn zips_are_deterministic_and_unzip_refuses_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("src");
        std::fs::create_dir_all(root.join("dist/sub")).unwrap();
        std::fs::write(root.join("dist/a.txt"), b"a").unwrap();
        std::fs::write(root.join("dist/sub/b.txt"), b"b").unwrap();
        std::fs::write(root.join("skip.log"), b"x").unwrap();
        let z1 = dir.path().join("1.zip");
        let z2 = dir.path().join("2.zip");
        assert_eq!(
            zip_dir(&root, &["dist/**/*".into()], &[], false, &z1).unwrap(),
            2
        );
        std::thread::sleep(std::time::Duration::from_millis(1100));
        std::fs::write(root.join("dist/a.txt"), b"a").unwrap();
        zip_dir(&root, &["dist/**/*".into()], &[], false, &z2).unwrap();
        assert_eq!(sha256_file(&z1).unwrap(), sha256_file(&z2).unwrap());
        let flat = dir.path().join("flat.zip");
        zip_dir(
            &root,
            &["**/*.txt".into()],
            &["dist/sub/**".into()],
            true,
            &flat,
        )
        .unwrap();
        let out = dir.path().join("out");
        unzip(&flat, &out).unwrap();
        assert!(out.join("a.txt").exists() && !out.join("b.txt").exists());
    }
}
