//! The master key and the encryption of secrets at rest (TOTP secrets, signing keys).

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

/// File, inside the data directory, holding the generated master key of the embedded default.
pub const MASTER_KEY_FILE: &str = "master.key";
/// First byte of every sealed value: lets the format change without guessing.
const SEAL_VERSION: u8 = 1;
const NONCE_LEN: usize = 24;

/// Failures of key handling and of sealing.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the master key must be 32 bytes encoded in base64 (44 characters); got {0}")]
    BadMasterKey(&'static str),
    #[error("cannot read or write the master key file {path}: {source}")]
    KeyFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("a value could not be sealed")]
    Seal,
    #[error("a sealed value could not be opened: wrong master key or tampered data")]
    Unseal,
}

/// 32 secret bytes from configuration; never printed.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

/// Where the master key came from, so start-up can say so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKeySource {
    Configured,
    LoadedFrom(PathBuf),
    GeneratedInto(PathBuf),
}

impl MasterKey {
    /// Parses the base64 form used in configuration.
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let bytes = B64
            .decode(text.trim())
            .map_err(|_| CryptoError::BadMasterKey("text that is not base64"))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| CryptoError::BadMasterKey("a key of the wrong length"))?;
        if bytes.iter().all(|b| *b == bytes[0]) {
            return Err(CryptoError::BadMasterKey("a key with no randomness"));
        }
        Ok(Self(bytes))
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The base64 form, for `idp gen-master-key` and the generated key file.
    pub fn to_base64(&self) -> String {
        B64.encode(self.0)
    }

    /// The configured key, else the one in `data_dir/master.key`, else a new one written there
    /// (readable by the owner only).
    pub fn resolve(
        configured: Option<&str>,
        data_dir: &Path,
    ) -> Result<(Self, MasterKeySource), CryptoError> {
        if let Some(text) = configured {
            return Ok((Self::from_base64(text)?, MasterKeySource::Configured));
        }
        let path = data_dir.join(MASTER_KEY_FILE);
        let io = |source| CryptoError::KeyFile {
            path: path.clone(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok((Self::from_base64(&text)?, MasterKeySource::LoadedFrom(path))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                create_private_dir(data_dir).map_err(io)?;
                let key = Self::generate();
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                let mut file = options.open(&path).map_err(io)?;
                writeln!(file, "{}", key.to_base64()).map_err(io)?;
                file.sync_all().map_err(io)?;
                Ok((key, MasterKeySource::GeneratedInto(path)))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// Encrypts and authenticates `plaintext`, bound to `context` (for example the row it
    /// belongs to) so a sealed value cannot be moved to another row unnoticed.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .map_err(|_| CryptoError::Seal)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(SEAL_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Reverses [`MasterKey::seal`]; fails if the key, the context or a byte differs.
    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != SEAL_VERSION {
            return Err(CryptoError::Unseal);
        }
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let nonce = XNonce::from_slice(&sealed[1..1 + NONCE_LEN]);
        cipher
            .decrypt(
                nonce,
                Payload {
                    msg: &sealed[1 + NONCE_LEN..],
                    aad: context,
                },
            )
            .map_err(|_| CryptoError::Unseal)
    }
}

/// Keyed hashes (HMAC-SHA256 under a key derived from the master key) for values stored only
/// as hashes: client secrets, one-time codes, authorization codes, refresh tokens. A stolen
/// database alone does not allow offline guessing of short codes.
#[derive(Clone)]
pub struct KeyedHasher {
    key: aws_lc_rs::hmac::Key,
}

impl fmt::Debug for KeyedHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyedHasher([redacted])")
    }
}

impl KeyedHasher {
    /// Derives the hashing key from the master key (HMAC as a PRF, with a fixed label).
    pub fn new(master_key: &MasterKey) -> Self {
        let derive = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &master_key.0);
        let subkey = aws_lc_rs::hmac::sign(&derive, b"guichet/keyed-hash/v1");
        Self {
            key: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, subkey.as_ref()),
        }
    }

    /// The hash of `value` for `purpose` (a purpose separates, say, client secrets from codes).
    pub fn hash(&self, purpose: &str, value: &[u8]) -> Vec<u8> {
        let mut ctx = aws_lc_rs::hmac::Context::with_key(&self.key);
        ctx.update(purpose.as_bytes());
        ctx.update(&[0]);
        ctx.update(value);
        ctx.sign().as_ref().to_vec()
    }

    /// Whether `value` hashes to `expected`, compared in constant time.
    pub fn verify(&self, purpose: &str, value: &[u8], expected: &[u8]) -> bool {
        let actual = self.hash(purpose, value);
        actual.len() == expected.len()
            && aws_lc_rs::constant_time::verify_slices_are_equal(&actual, expected).is_ok()
    }
}

/// Lower-case hexadecimal of `bytes` (hash values shown to operators and auditors).
pub fn hex(bytes: &[u8]) -> String {
    // `hex::encode` collects one `char` at a time; a row hash is written in one pass here.
    let mut out = vec![0; bytes.len() * 2];
    // The lengths match, the only way it fails; and hexadecimal digits are ASCII.
    let _ = ::hex::encode_to_slice(bytes, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Creates `dir` (and missing parents) readable by the owner only; an existing directory keeps
/// its permissions.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_two_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xab, 0xff, 0x10]), "000fabff10");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn seal_round_trip_and_tamper_detection() {
        let key = MasterKey::generate();
        let sealed = key.seal(b"JBSWY3DPEHPK3PXP", b"user:1").expect("seals");
        assert!(!sealed
            .windows(16)
            .any(|w| w == b"JBSWY3DPEHPK3PXP".as_slice()));
        assert_eq!(
            key.open(&sealed, b"user:1").expect("opens"),
            b"JBSWY3DPEHPK3PXP"
        );
        assert!(key.open(&sealed, b"user:2").is_err(), "context is bound");
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(key.open(&tampered, b"user:1").is_err());
        assert!(MasterKey::generate().open(&sealed, b"user:1").is_err());
        assert!(key.open(&[1, 2, 3], b"user:1").is_err());
    }

    #[test]
    fn keyed_hashes_depend_on_key_purpose_and_value() {
        let key = MasterKey::generate();
        let hasher = KeyedHasher::new(&key);
        let h = hasher.hash("client_secret", b"s3cret");
        assert_eq!(h.len(), 32);
        assert!(hasher.verify("client_secret", b"s3cret", &h));
        assert!(!hasher.verify("client_secret", b"s3cret!", &h));
        assert!(
            !hasher.verify("one_time_code", b"s3cret", &h),
            "purposes are separate"
        );
        assert!(!hasher.verify("client_secret", b"s3cret", &h[..31]));
        let other = KeyedHasher::new(&MasterKey::generate());
        assert!(
            !other.verify("client_secret", b"s3cret", &h),
            "depends on the master key"
        );
        assert_eq!(format!("{hasher:?}"), "KeyedHasher([redacted])");
    }

    #[test]
    fn base64_parsing() {
        let key = MasterKey::generate();
        let again = MasterKey::from_base64(&key.to_base64()).expect("parses");
        assert_eq!(again.0, key.0);
        assert!(MasterKey::from_base64("not base64!").is_err());
        assert!(MasterKey::from_base64(&B64.encode([7u8; 16])).is_err());
        assert!(MasterKey::from_base64(&B64.encode([0u8; 32])).is_err());
        assert_eq!(format!("{key:?}"), "MasterKey([redacted])");
    }

    #[test]
    fn generated_once_then_reloaded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let (first, source) = MasterKey::resolve(None, &data).expect("generates");
        assert_eq!(
            source,
            MasterKeySource::GeneratedInto(data.join(MASTER_KEY_FILE))
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let dir_mode = std::fs::metadata(&data).expect("meta").permissions().mode();
            assert_eq!(dir_mode & 0o077, 0, "data directory must be private");
            let mode = std::fs::metadata(data.join(MASTER_KEY_FILE))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "key file must be private");
        }
        let (second, source) = MasterKey::resolve(None, &data).expect("loads");
        assert!(matches!(source, MasterKeySource::LoadedFrom(_)));
        assert_eq!(first.0, second.0);
        let configured = MasterKey::generate().to_base64();
        let (third, source) = MasterKey::resolve(Some(&configured), &data).expect("configured");
        assert_eq!(source, MasterKeySource::Configured);
        assert_ne!(third.0, first.0);
    }
}
