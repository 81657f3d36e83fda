//! The key-encryption key that protects private keys at rest.
//!
//! A *key-encryption key* (KEK) is 32 random octets in a file of mode 0600.
//! [`KeyEncryptionKey::seal`] encrypts a private key (a PKCS #8 document)
//! with AES-256-GCM under a fresh random 96-bit nonce. The *associated data*
//! given to `seal` and `open` is authenticated but not stored, so a blob
//! sealed for one key cannot be opened as another: build it with
//! [`key_aad`] from the zone name and key id.
//!
//! A sealed blob is laid out as `version (1 octet, value 1) || nonce (12) ||
//! ciphertext || tag (16)`; the version octet is authenticated too.
//!
//! Limitations: random nonces are safe for about 2^32 seals under one KEK
//! (NIST SP 800-38D section 8.3), far more keys than a key master writes.
//! The KEK file itself is not encrypted, so its protection is the file mode
//! and whatever protects the disk. Unix only.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::hmac;
use keymaster_zone::Name;
use zeroize::Zeroizing;

/// Length of a key-encryption key in octets.
pub const KEK_LEN: usize = 32;

/// Version octet at the start of every sealed blob.
const BLOB_VERSION: u8 = 1;

/// Length of the AES-GCM authentication tag in octets.
const TAG_LEN: usize = 16;

/// Error of loading a key-encryption key or opening a sealed blob.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KekError {
    /// The key file could not be read.
    #[error("cannot read key-encryption key {}", path.display())]
    Read {
        /// Path of the key file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },

    /// The key file could not be created.
    #[error("cannot create key-encryption key {}", path.display())]
    Create {
        /// Path of the key file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },

    /// The key file is accessible by group or others.
    #[error(
        "key-encryption key {} has mode {mode:04o}, which lets group or others access it; \
         run `chmod 600 {}` and check who may have read it",
        path.display(),
        path.display()
    )]
    Permissions {
        /// Path of the key file.
        path: PathBuf,
        /// The file's permission bits.
        mode: u32,
    },

    /// The key file is not a regular file of 32 octets.
    #[error(
        "key-encryption key {} is not a regular file of {KEK_LEN} octets; \
         restore it from backup, because keys sealed under it cannot be opened otherwise",
        path.display()
    )]
    Malformed {
        /// Path of the key file.
        path: PathBuf,
    },

    /// The sealed blob is shorter than its fixed fields.
    #[error("sealed private key is {len} octets long, shorter than its header and tag")]
    Truncated {
        /// Length of the blob.
        len: usize,
    },

    /// The sealed blob starts with an unknown version octet.
    #[error("sealed private key has unknown format version {version}")]
    UnknownVersion {
        /// The version octet.
        version: u8,
    },

    /// Authentication failed.
    #[error(
        "sealed private key failed authentication: it was altered, belongs to another \
         zone or key, or was sealed under another key-encryption key"
    )]
    Authentication,
}

/// A key-encryption key loaded in memory. `Debug` prints only its path.
pub struct KeyEncryptionKey {
    key: LessSafeKey,
    /// HMAC-SHA256 under the same octets, for [`KeyEncryptionKey::derive_secret`].
    mac: hmac::Key,
    path: PathBuf,
}

impl KeyEncryptionKey {
    /// Loads the key at `path`, or creates it with mode 0600 if the file does
    /// not exist.
    ///
    /// Rejects a file that group or others may access, and a file that is
    /// not exactly 32 octets.
    pub fn load_or_create(path: &Path) -> Result<Self, KekError> {
        match File::open(path) {
            Ok(file) => Self::load(path, file),
            Err(error) if error.kind() == io::ErrorKind::NotFound => match Self::create(path) {
                // Another process created the file between the two calls.
                Err(KekError::Create { source, .. })
                    if source.kind() == io::ErrorKind::AlreadyExists =>
                {
                    let file = File::open(path).map_err(|source| KekError::Read {
                        path: path.to_path_buf(),
                        source,
                    })?;
                    Self::load(path, file)
                }
                result => result,
            },
            Err(source) => Err(KekError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Writes a fresh key to `path` with mode 0600, refusing to replace an
    /// existing file: a key in use must never be lost by mistake.
    ///
    /// The cluster key, shared by the members of a cluster, has the same
    /// file format as the key-encryption key.
    pub fn create_new(path: &Path) -> Result<Self, KekError> {
        Self::create(path)
    }

    /// Loads the key at `path`, which must exist, with the checks of
    /// [`KeyEncryptionKey::load_or_create`].
    pub fn open_existing(path: &Path) -> Result<Self, KekError> {
        let file = File::open(path).map_err(|source| KekError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::load(path, file)
    }

    /// Returns the path the key was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load(path: &Path, file: File) -> Result<Self, KekError> {
        let read_error = |source| KekError::Read {
            path: path.to_path_buf(),
            source,
        };
        let metadata = file.metadata().map_err(read_error)?;
        if !metadata.is_file() {
            return Err(KekError::Malformed {
                path: path.to_path_buf(),
            });
        }
        let mode = metadata.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(KekError::Permissions {
                path: path.to_path_buf(),
                mode,
            });
        }

        // Read one octet more than needed to detect a long file.
        let mut octets = Zeroizing::new(Vec::with_capacity(KEK_LEN + 1));
        file.take(KEK_LEN as u64 + 1)
            .read_to_end(&mut octets)
            .map_err(read_error)?;
        if octets.len() != KEK_LEN {
            return Err(KekError::Malformed {
                path: path.to_path_buf(),
            });
        }
        Ok(Self::from_octets(path, &octets))
    }

    fn create(path: &Path) -> Result<Self, KekError> {
        let create_error = |source| KekError::Create {
            path: path.to_path_buf(),
            source,
        };
        let mut octets = Zeroizing::new([0u8; KEK_LEN]);
        aws_lc_rs::rand::fill(&mut octets[..])
            .map_err(|_| create_error(io::Error::other("random number generator failed")))?;

        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(create_error)?;
        file.write_all(&octets[..]).map_err(create_error)?;
        file.sync_all().map_err(create_error)?;
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            File::open(dir)
                .and_then(|dir| dir.sync_all())
                .map_err(create_error)?;
        }
        tracing::info!(path = %path.display(), "created a new key-encryption key");
        Ok(Self::from_octets(path, &octets[..]))
    }

    fn from_octets(path: &Path, octets: &[u8]) -> Self {
        // AES-256 accepts any 32 octets, and callers pass exactly 32.
        let key = UnboundKey::new(&AES_256_GCM, octets).expect("AES-256 key of 32 octets");
        Self {
            key: LessSafeKey::new(key),
            mac: hmac::Key::new(hmac::HMAC_SHA256, octets),
            path: path.to_path_buf(),
        }
    }

    /// Derives a 32-octet secret for the purpose named by `label`, as
    /// HMAC-SHA256 of the label under the key's octets (a pseudo-random
    /// function, like HKDF-Expand of RFC 5869 section 2.3 with one block).
    ///
    /// Every holder of the same key derives the same secret, and the secret
    /// reveals nothing of the key; different labels give unrelated secrets.
    pub fn derive_secret(&self, label: &str) -> Zeroizing<[u8; 32]> {
        let tag = hmac::sign(&self.mac, label.as_bytes());
        let mut secret = Zeroizing::new([0u8; 32]);
        secret.copy_from_slice(tag.as_ref());
        secret
    }

    /// Encrypts `plaintext` and binds it to `aad`.
    ///
    /// # Panics
    ///
    /// Panics if the system random number generator fails or `plaintext`
    /// exceeds the AES-GCM limit of about 64 GiB; private keys are a few
    /// kilobytes.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).expect("system random number generator");

        let mut blob = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
        blob.push(BLOB_VERSION);
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(plaintext);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(versioned_aad(aad)),
                &mut blob[1 + NONCE_LEN..],
            )
            .expect("AES-GCM input below 64 GiB");
        blob.extend_from_slice(tag.as_ref());
        blob
    }

    /// Decrypts a blob made by [`KeyEncryptionKey::seal`] with the same
    /// `aad`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, KekError> {
        if sealed.len() < 1 + NONCE_LEN + TAG_LEN {
            return Err(KekError::Truncated { len: sealed.len() });
        }
        if sealed[0] != BLOB_VERSION {
            return Err(KekError::UnknownVersion { version: sealed[0] });
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[1..1 + NONCE_LEN]);

        let mut buffer = Zeroizing::new(sealed[1 + NONCE_LEN..].to_vec());
        let len = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(versioned_aad(aad)),
                &mut buffer,
            )
            .map_err(|_| KekError::Authentication)?
            .len();
        buffer.truncate(len);
        Ok(buffer)
    }
}

impl fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyEncryptionKey")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Builds the associated data that binds a sealed private key to its zone
/// and key id.
///
/// The zone is taken in lower case, so the binding ignores the case of the
/// name. Every field is length-prefixed, so no two pairs give the same data.
pub fn key_aad(zone: &Name, key_id: &str) -> Vec<u8> {
    let zone = zone.to_lowercase();
    let mut aad = Vec::with_capacity(32 + zone.as_wire().len() + key_id.len());
    aad.extend_from_slice(b"keymaster private key");
    aad.extend_from_slice(&(zone.as_wire().len() as u16).to_be_bytes());
    aad.extend_from_slice(zone.as_wire());
    aad.extend_from_slice(&(key_id.len() as u32).to_be_bytes());
    aad.extend_from_slice(key_id.as_bytes());
    aad
}

fn versioned_aad(aad: &[u8]) -> Vec<u8> {
    let mut versioned = Vec::with_capacity(1 + aad.len());
    versioned.push(BLOB_VERSION);
    versioned.extend_from_slice(aad);
    versioned
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn zone(text: &str) -> Name {
        Name::from_labels(text.split('.').map(str::as_bytes)).unwrap()
    }

    fn new_kek() -> (tempfile::TempDir, KeyEncryptionKey) {
        let dir = tempfile::tempdir().unwrap();
        let kek = KeyEncryptionKey::load_or_create(&dir.path().join("kek")).unwrap();
        (dir, kek)
    }

    #[test]
    fn kek_seal_open_round_trip() {
        let (_dir, kek) = new_kek();
        let aad = key_aad(&zone("example.com"), "key-1");
        let sealed = kek.seal(b"private key", &aad);
        assert_eq!(sealed.len(), 1 + NONCE_LEN + 11 + TAG_LEN);
        assert!(!sealed.windows(11).any(|w| w == b"private key"));
        assert_eq!(&kek.open(&sealed, &aad).unwrap()[..], b"private key");
    }

    #[test]
    fn kek_derive_secret_per_label() {
        let (dir, kek) = new_kek();
        let again = KeyEncryptionKey::open_existing(kek.path()).unwrap();
        assert_eq!(*kek.derive_secret("a"), *again.derive_secret("a"));
        assert_ne!(*kek.derive_secret("a"), *kek.derive_secret("b"));
        let other = KeyEncryptionKey::load_or_create(&dir.path().join("other.key")).unwrap();
        assert_ne!(*kek.derive_secret("a"), *other.derive_secret("a"));
        // HMAC-SHA256 of "a" under the octets read back from the file.
        let octets = std::fs::read(kek.path()).unwrap();
        let expected = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &octets), b"a");
        assert_eq!(&kek.derive_secret("a")[..], expected.as_ref());
    }

    #[test]
    fn kek_reload_opens_blob() {
        let (dir, kek) = new_kek();
        let sealed = kek.seal(b"secret", b"aad");
        let again = KeyEncryptionKey::load_or_create(&dir.path().join("kek")).unwrap();
        assert_eq!(&again.open(&sealed, b"aad").unwrap()[..], b"secret");
    }

    #[test]
    fn kek_nonces_differ() {
        let (_dir, kek) = new_kek();
        assert_ne!(kek.seal(b"same", b"aad"), kek.seal(b"same", b"aad"));
    }

    #[test]
    fn kek_wrong_aad_rejected() {
        let (_dir, kek) = new_kek();
        let sealed = kek.seal(b"secret", &key_aad(&zone("example.com"), "key-1"));
        let other_key = kek.open(&sealed, &key_aad(&zone("example.com"), "key-2"));
        assert!(matches!(other_key, Err(KekError::Authentication)));
        let other_zone = kek.open(&sealed, &key_aad(&zone("example.net"), "key-1"));
        assert!(matches!(other_zone, Err(KekError::Authentication)));
    }

    #[test]
    fn kek_aad_ignores_zone_case() {
        let upper = key_aad(&zone("EXAMPLE.com"), "k");
        assert_eq!(upper, key_aad(&zone("example.com"), "k"));
    }

    #[test]
    fn kek_tampered_blob_rejected() {
        let (_dir, kek) = new_kek();
        let sealed = kek.seal(b"secret", b"aad");
        for position in [1, 1 + NONCE_LEN, sealed.len() - 1] {
            let mut tampered = sealed.clone();
            tampered[position] ^= 0x01;
            let result = kek.open(&tampered, b"aad");
            assert!(
                matches!(result, Err(KekError::Authentication)),
                "{position}"
            );
        }
        let mut bad_version = sealed.clone();
        bad_version[0] = 2;
        let result = kek.open(&bad_version, b"aad");
        assert!(matches!(
            result,
            Err(KekError::UnknownVersion { version: 2 })
        ));
        let result = kek.open(&sealed[..20], b"aad");
        assert!(matches!(result, Err(KekError::Truncated { len: 20 })));
    }

    #[test]
    fn kek_other_key_rejected() {
        let (_dir, kek) = new_kek();
        let (_other_dir, other) = new_kek();
        let sealed = kek.seal(b"secret", b"aad");
        assert!(matches!(
            other.open(&sealed, b"aad"),
            Err(KekError::Authentication)
        ));
    }

    #[test]
    fn kek_created_with_mode_0600() {
        let (dir, _kek) = new_kek();
        let metadata = std::fs::metadata(dir.path().join("kek")).unwrap();
        assert_eq!(metadata.permissions().mode() & 0o7777, 0o600);
        assert_eq!(metadata.len(), KEK_LEN as u64);
    }

    #[test]
    fn kek_group_readable_rejected() {
        let (dir, _kek) = new_kek();
        let path = dir.path().join("kek");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let error = KeyEncryptionKey::load_or_create(&path).unwrap_err();
        assert!(matches!(error, KekError::Permissions { mode: 0o640, .. }));
        let message = error.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("chmod 600"), "{message}");
    }

    #[test]
    fn kek_wrong_length_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek");
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .unwrap();
        file.write_all(&[7; 31]).unwrap();
        let error = KeyEncryptionKey::load_or_create(&path).unwrap_err();
        assert!(matches!(error, KekError::Malformed { .. }));
    }

    #[test]
    fn kek_create_new_refuses_to_overwrite() {
        let (dir, kek) = new_kek();
        let path = dir.path().join("kek");
        let error = KeyEncryptionKey::create_new(&path).unwrap_err();
        assert!(
            matches!(&error, KekError::Create { source, .. } if source.kind() == io::ErrorKind::AlreadyExists),
            "{error}"
        );
        let again = KeyEncryptionKey::open_existing(&path).unwrap();
        let sealed = kek.seal(b"secret", b"aad");
        assert_eq!(&again.open(&sealed, b"aad").unwrap()[..], b"secret");
        let missing = KeyEncryptionKey::open_existing(&dir.path().join("none"));
        assert!(matches!(missing, Err(KekError::Read { .. })));
    }

    #[test]
    fn kek_debug_shows_path_only() {
        let (_dir, kek) = new_kek();
        let text = format!("{kek:?}");
        assert!(text.starts_with("KeyEncryptionKey { path:"), "{text}");
    }
}
