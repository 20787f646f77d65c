//! The gateway password: generated at registration, typed (or pasted) into FTPS clients,
//! stored only as a keyed hash.
//!
//! The password is a random secret of well over 128 bits, so guessing it offline is hopeless
//! even against a fast hash; HMAC-SHA256 under a server-side key ([`PasswordKey`]) additionally
//! makes a stolen database useless without the key file. A slow password hash would only cap
//! the login rate (SPEC §1).

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::{hmac, rand};

use crate::hex;
use crate::ids::Username;

/// Characters a person can read back without confusion: no `0`/`O`/`o`, `1`/`I`/`l`.
/// Letters and digits only, so no client or shell needs quoting.
const PASSWORD_ALPHABET: &[u8; 56] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz";

/// 24 characters of a 56-letter alphabet: 24 * log2(56) ≈ 139 bits.
const PASSWORD_LENGTH: usize = 24;

const HASH_PREFIX: &str = "hmac-sha256:";
const SEALED_PREFIX: &str = "aes256gcm:";
/// Binds sealed passwords to their purpose: the sealing key is an HMAC of this under the
/// password key, so it is never the HMAC key itself.
const SEALING_KEY_LABEL: &[u8] = b"mftgw gateway password sealing v1";

/// Generates a new gateway password from the system's secure random generator.
///
/// # Panics
/// If the operating system cannot provide random bytes; no safe password exists then.
pub fn generate_gateway_password() -> String {
    // Bytes at or above this bound would make `byte % 56` favour the first letters.
    const UNBIASED_BOUND: u8 = (256 / PASSWORD_ALPHABET.len() * PASSWORD_ALPHABET.len()) as u8;
    let mut password = String::with_capacity(PASSWORD_LENGTH);
    let mut random = [0u8; 64];
    while password.len() < PASSWORD_LENGTH {
        fill_random(&mut random);
        for &byte in random.iter().filter(|&&byte| byte < UNBIASED_BOUND) {
            if password.len() == PASSWORD_LENGTH {
                break;
            }
            password.push(char::from(
                PASSWORD_ALPHABET[usize::from(byte) % PASSWORD_ALPHABET.len()],
            ));
        }
    }
    password
}

fn fill_random(buffer: &mut [u8]) {
    rand::fill(buffer).expect("the system random generator failed");
}

/// Why a stored password key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordKeyError {
    #[error("a password key must be 64 hex digits (32 bytes), got {0} characters")]
    WrongLength(usize),
    #[error("a password key must be hex digits only")]
    NotHex,
}

/// The server-side secret under which gateway passwords are hashed. Losing it means every
/// user needs a new password; keep it in a key file beside the database, not inside it.
#[derive(Clone)]
pub struct PasswordKey {
    bytes: [u8; 32],
}

impl std::fmt::Debug for PasswordKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordKey(<redacted>)")
    }
}

impl PasswordKey {
    /// A fresh random key.
    ///
    /// # Panics
    /// If the operating system cannot provide random bytes.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        fill_random(&mut bytes);
        Self { bytes }
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self { bytes }
    }

    /// The key as 64 lowercase hex digits, the key file format.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.bytes)
    }

    /// Reads a key written by [`PasswordKey::to_hex`]; surrounding whitespace (a trailing
    /// newline in the key file) is ignored.
    pub fn from_hex(text: &str) -> Result<Self, PasswordKeyError> {
        let text = text.trim();
        if text.len() != 64 {
            return Err(PasswordKeyError::WrongLength(text.len()));
        }
        let decoded = hex::decode(text).ok_or(PasswordKeyError::NotHex)?;
        let bytes = decoded.try_into().map_err(|_| PasswordKeyError::NotHex)?;
        Ok(Self { bytes })
    }

    /// What tells this key from others without revealing it: the MAC of a fixed label.
    pub fn fingerprint(&self) -> String {
        self.hash("mftgw password key fingerprint")
    }

    /// The value to store for `password`: `hmac-sha256:` and the MAC in lowercase hex.
    pub fn hash(&self, password: &str) -> String {
        let tag = hmac::sign(&self.hmac_key(), password.as_bytes());
        format!("{HASH_PREFIX}{}", hex::encode(tag.as_ref()))
    }

    /// Whether `password` matches `stored` (a value from [`PasswordKey::hash`]), comparing
    /// the MACs in constant time. A malformed stored value matches nothing.
    pub fn verify(&self, stored: &str, password: &str) -> bool {
        let Some(tag) = stored.strip_prefix(HASH_PREFIX).and_then(hex::decode) else {
            return false;
        };
        hmac::verify(&self.hmac_key(), password.as_bytes(), &tag).is_ok()
    }

    /// `password` encrypted (AES-256-GCM, random nonce, bound to `username`) so that the
    /// portal can show it to its owner again: `aes256gcm:` and hex of nonce + ciphertext.
    pub fn seal(&self, username: &Username, password: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce);
        let mut sealed = password.as_bytes().to_vec();
        self.sealing_key()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(username.as_str().as_bytes()),
                &mut sealed,
            )
            .expect("AES-GCM sealing of a short password cannot fail");
        format!(
            "{SEALED_PREFIX}{}{}",
            hex::encode(&nonce),
            hex::encode(&sealed)
        )
    }

    /// The password [`PasswordKey::seal`] sealed for `username`; `None` if `sealed` was made
    /// under another key or for another user, or is malformed.
    pub fn unseal(&self, username: &Username, sealed: &str) -> Option<String> {
        let bytes = hex::decode(sealed.strip_prefix(SEALED_PREFIX)?)?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let mut buffer = ciphertext.to_vec();
        let plain = self
            .sealing_key()
            .open_in_place(
                Nonce::try_assume_unique_for_key(nonce).ok()?,
                Aad::from(username.as_str().as_bytes()),
                &mut buffer,
            )
            .ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }

    fn sealing_key(&self) -> LessSafeKey {
        let derived = hmac::sign(&self.hmac_key(), SEALING_KEY_LABEL);
        LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, derived.as_ref()).expect("HMAC-SHA256 gives 32 bytes"),
        )
    }

    fn hmac_key(&self) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, &self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_passwords_open_only_with_the_key_and_the_username() {
        let key = PasswordKey::generate();
        let owner: Username = "CVR_1_UID_1".parse().unwrap();
        let sealed = key.seal(&owner, "secret-password");
        assert!(sealed.starts_with(SEALED_PREFIX));
        assert!(!sealed.contains("secret"));
        assert_ne!(sealed, key.seal(&owner, "secret-password"), "random nonce");
        assert_eq!(
            key.unseal(&owner, &sealed).as_deref(),
            Some("secret-password")
        );
        assert_eq!(
            key.unseal(&"CVR_1_UID_2".parse().unwrap(), &sealed),
            None,
            "bound to the user"
        );
        assert_eq!(PasswordKey::generate().unseal(&owner, &sealed), None);
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(key.unseal(&owner, &tampered), None);
        for malformed in ["", "aes256gcm:", "aes256gcm:zz", "aes256gcm:00", "other:00"] {
            assert_eq!(key.unseal(&owner, malformed), None, "{malformed:?}");
        }
    }

    #[test]
    fn generated_passwords_use_only_the_alphabet_and_differ() {
        let first = generate_gateway_password();
        let second = generate_gateway_password();
        assert_eq!(first.len(), PASSWORD_LENGTH);
        assert!(
            first.bytes().all(|b| PASSWORD_ALPHABET.contains(&b)),
            "{first}"
        );
        assert_ne!(first, second);
    }

    #[test]
    fn generated_passwords_carry_at_least_128_bits() {
        let bits = PASSWORD_LENGTH as f64 * (PASSWORD_ALPHABET.len() as f64).log2();
        assert!(bits >= 128.0, "{bits} bits");
    }

    #[test]
    fn alphabet_has_no_look_alikes_or_repeats() {
        for look_alike in *b"0Oo1Il" {
            assert!(
                !PASSWORD_ALPHABET.contains(&look_alike),
                "{}",
                char::from(look_alike)
            );
        }
        let mut sorted = PASSWORD_ALPHABET.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), PASSWORD_ALPHABET.len());
    }

    #[test]
    fn hash_is_the_documented_hmac() {
        // RFC 4231 test case 2 uses a 4-byte key; HMAC pads keys, so a 32-byte key of
        // "Jefe" followed by zeros gives the same MAC.
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        let key = PasswordKey::from_bytes(key);
        assert_eq!(
            key.hash("what do ya want for nothing?"),
            "hmac-sha256:5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn verify_accepts_only_the_right_password_under_the_right_key() {
        let key = PasswordKey::generate();
        let password = generate_gateway_password();
        let stored = key.hash(&password);
        assert!(key.verify(&stored, &password));
        assert!(!key.verify(&stored, "wrong"));
        assert!(!key.verify(&stored, &password[1..]));
        assert!(!PasswordKey::generate().verify(&stored, &password));
    }

    #[test]
    fn verify_rejects_malformed_stored_values() {
        let key = PasswordKey::generate();
        let stored = key.hash("secret");
        let bare_hex = stored.trim_start_matches(HASH_PREFIX);
        for malformed in ["", "secret", bare_hex, "hmac-sha256:zz", "argon2id:abc"] {
            assert!(!key.verify(malformed, "secret"), "{malformed}");
        }
        assert!(
            !key.verify(&stored[..stored.len() - 2], "secret"),
            "truncated MAC"
        );
    }

    #[test]
    fn key_round_trips_through_hex() {
        let key = PasswordKey::generate();
        let hex = key.to_hex();
        assert_eq!(hex.len(), 64);
        let restored = PasswordKey::from_hex(&format!("{hex}\n")).unwrap();
        assert_eq!(restored.hash("x"), key.hash("x"));
        assert_eq!(
            PasswordKey::from_hex("abcd").unwrap_err(),
            PasswordKeyError::WrongLength(4)
        );
        assert_eq!(
            PasswordKey::from_hex(&"g".repeat(64)).unwrap_err(),
            PasswordKeyError::NotHex
        );
    }

    #[test]
    fn debug_does_not_print_the_key() {
        let key = PasswordKey::from_bytes([0xab; 32]);
        assert!(!format!("{key:?}").contains("abab"));
    }
}
