//! Identity key files: the node's (or relay's, index server's, app's) Ed25519 seed on disk,
//! optionally encrypted at rest.
//!
//! Layout (all integers big-endian; docs/PROTOCOL.md, "Key files"):
//!
//! ```text
//! "OFFSTKEY" | version u8 = 1 | protection u8 | public key (32) | body
//!   protection 0 (plain):      seed (32)
//!   protection 1 (passphrase): iterations u32 | salt (16) | nonce (12) | sealed seed (48)
//!   protection 2 (app secret): salt (16) | nonce (12) | sealed seed (48)
//! ```
//!
//! Sealing is ChaCha20-Poly1305 with the whole header (magic … public key, KDF parameters) as
//! associated data, so no field can be changed without detection. The passphrase key is
//! PBKDF2-HMAC-SHA256; an app secret (e.g. from the Android Keystore or iOS Keychain, at least
//! 16 bytes) goes through HKDF-SHA256. Files are written to a temporary name, synced and
//! renamed, with mode 0600 on Unix.

use std::fs;
use std::io::Write as _;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use ring::pbkdf2;
use zeroize::Zeroizing;

use crate::identity::Identity;
use crate::kdf::derive_key;
use crate::SecureRngDyn;

const MAGIC: &[u8; 8] = b"OFFSTKEY";
const VERSION: u8 = 1;
const PLAIN: u8 = 0;
const PASSPHRASE: u8 = 1;
const APP_SECRET: u8 = 2;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 12;
const SEALED_LEN: usize = 32 + 16;
const HEADER_LEN: usize = 8 + 1 + 1 + 32;

/// PBKDF2 iterations for new passphrase-protected files. A phone derives this in well under a
/// second; a guessing attacker pays the same per guess.
pub const DEFAULT_PBKDF2_ITERATIONS: u32 = 200_000;
/// Fewest iterations accepted when reading, so a tampered file cannot weaken the KDF unnoticed
/// (the header is authenticated too, but only after the key is derived).
pub const MIN_PBKDF2_ITERATIONS: u32 = 10_000;
/// Most iterations accepted when reading, so a hostile file cannot stall the program.
pub const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
/// Shortest app secret accepted.
pub const MIN_APP_SECRET_LEN: usize = 16;

/// How a key file's seed is protected.
#[derive(Clone, Copy)]
pub enum KeyProtection<'a> {
    /// Not encrypted; rely on file permissions.
    Plain,
    /// Encrypted with a key derived from a user passphrase.
    Passphrase(&'a str),
    /// Encrypted with a key derived from a secret the app keeps in the platform keystore.
    AppSecret(&'a [u8]),
}

/// Why a key file cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file could not be read or written.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not an Offst key file of a version we read.
    #[error("not an Offst key file (or a newer version of one)")]
    NotAKeyFile,
    /// The file is encrypted and no (or the wrong kind of) secret was supplied.
    #[error("the key file is encrypted with a {needed}; supply it")]
    SecretNeeded {
        /// "passphrase" or "app secret".
        needed: &'static str,
    },
    /// The secret is wrong or the file was tampered with.
    #[error("wrong passphrase or secret, or the key file is damaged")]
    WrongSecretOrDamaged,
    /// The file's parameters are outside the accepted bounds.
    #[error("key file parameters are out of bounds")]
    BadParameters,
    /// The app secret is too short to be a key.
    #[error("app secret must be at least {MIN_APP_SECRET_LEN} bytes")]
    SecretTooShort,
}

fn sealing_key(key: &[u8; 32]) -> LessSafeKey {
    match UnboundKey::new(&CHACHA20_POLY1305, key) {
        Ok(key) => LessSafeKey::new(key),
        Err(_) => unreachable!("a 32-byte key is always a valid ChaCha20-Poly1305 key"),
    }
}

fn passphrase_key(passphrase: &str, salt: &[u8], iterations: NonZeroU32) -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        passphrase.as_bytes(),
        &mut key[..],
    );
    key
}

fn app_secret_key(secret: &[u8], salt: &[u8]) -> Result<Zeroizing<[u8; 32]>, KeyFileError> {
    if secret.len() < MIN_APP_SECRET_LEN {
        return Err(KeyFileError::SecretTooShort);
    }
    Ok(derive_key(salt, secret, b"offst/v1/keyfile"))
}

/// Encodes `identity` as key-file bytes.
pub fn encode(
    identity: &Identity,
    protection: KeyProtection<'_>,
    rng: &mut dyn SecureRngDyn,
) -> Result<Vec<u8>, KeyFileError> {
    let mut out = Vec::with_capacity(HEADER_LEN + 96);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    let (mode, key) = match protection {
        KeyProtection::Plain => {
            out.push(PLAIN);
            out.extend_from_slice(identity.public_key().as_bytes());
            out.extend_from_slice(identity.seed());
            return Ok(out);
        }
        KeyProtection::Passphrase(passphrase) => {
            out.push(PASSPHRASE);
            out.extend_from_slice(identity.public_key().as_bytes());
            let mut salt = [0u8; SALT_LEN];
            rng.fill(&mut salt);
            out.extend_from_slice(&DEFAULT_PBKDF2_ITERATIONS.to_be_bytes());
            out.extend_from_slice(&salt);
            let iterations = NonZeroU32::MIN.saturating_add(DEFAULT_PBKDF2_ITERATIONS - 1);
            (PASSPHRASE, passphrase_key(passphrase, &salt, iterations))
        }
        KeyProtection::AppSecret(secret) => {
            out.push(APP_SECRET);
            out.extend_from_slice(identity.public_key().as_bytes());
            let mut salt = [0u8; SALT_LEN];
            rng.fill(&mut salt);
            out.extend_from_slice(&salt);
            (APP_SECRET, app_secret_key(secret, &salt)?)
        }
    };
    debug_assert_ne!(mode, PLAIN);
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce);
    out.extend_from_slice(&nonce);
    let aad = out.clone();
    let mut sealed = identity.seed().to_vec();
    sealing_key(&key)
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&aad),
            &mut sealed,
        )
        .map_err(|_| KeyFileError::BadParameters)?;
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Splits `N` bytes off the front of `bytes`.
fn take<const N: usize>(bytes: &mut &[u8]) -> Result<[u8; N], KeyFileError> {
    let (head, tail) = bytes
        .split_first_chunk::<N>()
        .ok_or(KeyFileError::NotAKeyFile)?;
    *bytes = tail;
    Ok(*head)
}

/// Decodes key-file bytes with the given protection.
pub fn decode(bytes: &[u8], protection: KeyProtection<'_>) -> Result<Identity, KeyFileError> {
    let mut rest = bytes;
    let magic: [u8; 8] = take(&mut rest)?;
    let [version, mode] = take::<2>(&mut rest)?;
    if &magic != MAGIC || version != VERSION {
        return Err(KeyFileError::NotAKeyFile);
    }
    let public_key: [u8; 32] = take(&mut rest)?;
    let identity = match (mode, protection) {
        (PLAIN, _) => {
            let seed: [u8; 32] = rest.try_into().map_err(|_| KeyFileError::NotAKeyFile)?;
            Identity::from_seed(seed)
        }
        (PASSPHRASE, KeyProtection::Passphrase(passphrase)) => {
            if rest.len() != 4 + SALT_LEN + NONCE_LEN + SEALED_LEN {
                return Err(KeyFileError::NotAKeyFile);
            }
            let iterations = u32::from_be_bytes(take(&mut rest)?);
            if !(MIN_PBKDF2_ITERATIONS..=MAX_PBKDF2_ITERATIONS).contains(&iterations) {
                return Err(KeyFileError::BadParameters);
            }
            let iterations = NonZeroU32::new(iterations).ok_or(KeyFileError::BadParameters)?;
            let salt: [u8; SALT_LEN] = take(&mut rest)?;
            let key = passphrase_key(passphrase, &salt, iterations);
            open_seed(bytes, rest, &key)?
        }
        (APP_SECRET, KeyProtection::AppSecret(secret)) => {
            if rest.len() != SALT_LEN + NONCE_LEN + SEALED_LEN {
                return Err(KeyFileError::NotAKeyFile);
            }
            let salt: [u8; SALT_LEN] = take(&mut rest)?;
            let key = app_secret_key(secret, &salt)?;
            open_seed(bytes, rest, &key)?
        }
        (PASSPHRASE, _) => {
            return Err(KeyFileError::SecretNeeded {
                needed: "passphrase",
            })
        }
        (APP_SECRET, _) => {
            return Err(KeyFileError::SecretNeeded {
                needed: "app secret",
            })
        }
        _ => return Err(KeyFileError::NotAKeyFile),
    };
    if identity.public_key().as_bytes() != &public_key {
        return Err(KeyFileError::WrongSecretOrDamaged);
    }
    Ok(identity)
}

/// Opens the sealed seed. `sealed_part` is the tail of `file` starting at the nonce; all of
/// `file` before the sealed seed (header, parameters, nonce) is associated data.
fn open_seed(file: &[u8], sealed_part: &[u8], key: &[u8; 32]) -> Result<Identity, KeyFileError> {
    let mut rest = sealed_part;
    let nonce: [u8; NONCE_LEN] = take(&mut rest)?;
    let aad_len = file.len() - rest.len();
    let aad = file.get(..aad_len).ok_or(KeyFileError::NotAKeyFile)?;
    let mut sealed = rest.to_vec();
    let seed = sealing_key(key)
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut sealed,
        )
        .map_err(|_| KeyFileError::WrongSecretOrDamaged)?;
    let seed: Zeroizing<[u8; 32]> =
        Zeroizing::new(<[u8; 32]>::try_from(&*seed).map_err(|_| KeyFileError::NotAKeyFile)?);
    sealed.iter_mut().for_each(|byte| *byte = 0);
    Ok(Identity::from_seed(*seed))
}

/// Writes a key file atomically (temporary file, fsync, rename) with mode 0600 on Unix.
/// Refuses to overwrite an existing file.
pub fn write(
    path: &Path,
    identity: &Identity,
    protection: KeyProtection<'_>,
    rng: &mut dyn SecureRngDyn,
) -> Result<(), KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    };
    if path.exists() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "refusing to overwrite an existing key file",
        )));
    }
    let bytes = encode(identity, protection, rng)?;
    let mut temp = path.as_os_str().to_owned();
    temp.push(".tmp");
    let temp = PathBuf::from(temp);
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temp).map_err(io)?;
    file.write_all(&bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    fs::rename(&temp, path).map_err(io)?;
    Ok(())
}

/// Reads a key file.
pub fn read(path: &Path, protection: KeyProtection<'_>) -> Result<Identity, KeyFileError> {
    let metadata = fs::metadata(path).map_err(|source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    })?;
    if metadata.len() > 1024 {
        return Err(KeyFileError::NotAKeyFile);
    }
    let bytes = fs::read(path).map_err(|source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    })?;
    decode(&bytes, protection)
}

/// Reads the key file at `path`, or creates it with a fresh identity if it does not exist
/// (the first run of a server). Returns the identity and whether it was created.
pub fn read_or_create(
    path: &Path,
    protection: KeyProtection<'_>,
    rng: &mut dyn SecureRngDyn,
) -> Result<(Identity, bool), KeyFileError> {
    if path.exists() {
        return Ok((read(path, protection)?, false));
    }
    let identity = Identity::generate(rng);
    write(path, &identity, protection, rng)?;
    Ok((identity, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    fn rng() -> rand_chacha::ChaCha20Rng {
        rand_chacha::ChaCha20Rng::seed_from_u64(7)
    }

    #[test]
    fn plain_file_round_trips() {
        let identity = Identity::from_seed([3; 32]);
        let bytes = encode(&identity, KeyProtection::Plain, &mut rng()).unwrap();
        let back = decode(&bytes, KeyProtection::Plain).unwrap();
        assert_eq!(back.public_key(), identity.public_key());
    }

    #[test]
    fn passphrase_file_needs_the_right_passphrase() {
        let identity = Identity::from_seed([4; 32]);
        let bytes = encode(
            &identity,
            KeyProtection::Passphrase("correct horse"),
            &mut rng(),
        )
        .unwrap();
        assert!(
            !bytes.windows(32).any(|w| w == [4; 32]),
            "seed is not stored in clear"
        );
        let back = decode(&bytes, KeyProtection::Passphrase("correct horse")).unwrap();
        assert_eq!(back.public_key(), identity.public_key());
        assert!(matches!(
            decode(&bytes, KeyProtection::Passphrase("wrong")),
            Err(KeyFileError::WrongSecretOrDamaged)
        ));
        assert!(matches!(
            decode(&bytes, KeyProtection::Plain),
            Err(KeyFileError::SecretNeeded {
                needed: "passphrase"
            })
        ));
    }

    #[test]
    fn app_secret_file_detects_tampering() {
        let identity = Identity::from_seed([5; 32]);
        let secret = [9u8; 32];
        let mut bytes = encode(&identity, KeyProtection::AppSecret(&secret), &mut rng()).unwrap();
        assert_eq!(
            decode(&bytes, KeyProtection::AppSecret(&secret))
                .unwrap()
                .public_key(),
            identity.public_key()
        );
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(matches!(
            decode(&bytes, KeyProtection::AppSecret(&secret)),
            Err(KeyFileError::WrongSecretOrDamaged)
        ));
        assert!(matches!(
            encode(&identity, KeyProtection::AppSecret(&[1; 8]), &mut rng()),
            Err(KeyFileError::SecretTooShort)
        ));
    }

    #[test]
    fn garbage_and_truncated_files_are_not_key_files() {
        let identity = Identity::from_seed([6; 32]);
        let bytes = encode(&identity, KeyProtection::Plain, &mut rng()).unwrap();
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut], KeyProtection::Plain).is_err());
        }
        assert!(matches!(
            decode(
                b"hello world, this is not a key file at all",
                KeyProtection::Plain
            ),
            Err(KeyFileError::NotAKeyFile)
        ));
    }

    #[test]
    fn files_are_created_once_with_private_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let (created, was_new) = read_or_create(&path, KeyProtection::Plain, &mut rng()).unwrap();
        assert!(was_new);
        let (again, was_new) = read_or_create(&path, KeyProtection::Plain, &mut rng()).unwrap();
        assert!(!was_new);
        assert_eq!(created.public_key(), again.public_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(write(&path, &created, KeyProtection::Plain, &mut rng()).is_err());
    }
}
