//! Small text encodings the test PKI writes: lowercase hex for serials and fingerprints, and PEM
//! for DER that rcgen did not produce itself (the RSA-PSS re-signed OCES3 certificates and CRL).

use anyhow::{Context, bail};
use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn hex_decode(hex: &str) -> anyhow::Result<Vec<u8>> {
    hex.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [high, low] => Ok(hex_digit(*high, hex)? << 4 | hex_digit(*low, hex)?),
            _ => bail!("hex string {hex:?} has an odd number of digits"),
        })
        .collect()
}

fn hex_digit(digit: u8, hex: &str) -> anyhow::Result<u8> {
    char::from(digit)
        .to_digit(16)
        .map(|value| value as u8)
        .with_context(|| format!("hex string {hex:?} contains a non-hex digit"))
}

pub(crate) fn sha256_fingerprint(der: &[u8]) -> String {
    hex_lower(digest::digest(&digest::SHA256, der).as_ref())
}

/// 16 random bytes, positive and without a leading zero byte, so that the DER INTEGER content is
/// exactly these bytes and `hex_lower` of them is the canonical serial string.
pub(crate) fn random_serial() -> anyhow::Result<Vec<u8>> {
    let mut serial = [0u8; 16];
    SystemRandom::new()
        .fill(&mut serial)
        .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
    serial[0] = (serial[0] & 0x7f).max(1);
    Ok(serial.to_vec())
}

pub(crate) fn random_password() -> anyhow::Result<String> {
    let mut bytes = [0u8; 9];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
    Ok(hex_lower(&bytes))
}

/// Big-endian bytes of `n` without leading zeros (at least one byte), positive as a DER INTEGER.
pub(crate) fn minimal_unsigned_be(n: u64) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    let first = bytes
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(bytes.len() - 1);
    let mut minimal = bytes[first..].to_vec();
    if minimal[0] & 0x80 != 0 {
        minimal.insert(0, 0);
    }
    minimal
}

pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut base64 = String::with_capacity(der.len().div_ceil(3) * 4);
    for chunk in der.chunks(3) {
        let group = match *chunk {
            [a] => [a, 0, 0],
            [a, b] => [a, b, 0],
            [a, b, c] => [a, b, c],
            _ => unreachable!("chunks(3) yields one to three bytes"),
        };
        let bits = u32::from_be_bytes([0, group[0], group[1], group[2]]);
        for position in 0..4 {
            if position <= chunk.len() {
                base64.push(ALPHABET[(bits >> (18 - 6 * position) & 0x3f) as usize] as char);
            } else {
                base64.push('=');
            }
        }
    }
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in base64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_encoding_pads_like_rfc_4648() {
        assert!(pem_encode("X", b"f").contains("\nZg==\n"));
        assert!(pem_encode("X", b"fo").contains("\nZm8=\n"));
        assert!(pem_encode("X", b"foo").contains("\nZm9v\n"));
    }

    #[test]
    fn minimal_integers_have_no_leading_zeros_and_stay_positive() {
        assert_eq!(minimal_unsigned_be(0), vec![0]);
        assert_eq!(minimal_unsigned_be(2), vec![2]);
        assert_eq!(minimal_unsigned_be(0x80), vec![0, 0x80]);
        assert_eq!(minimal_unsigned_be(0x1234), vec![0x12, 0x34]);
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(
            hex_decode(&hex_lower(&[0, 0xab, 0x7f])).unwrap(),
            vec![0, 0xab, 0x7f]
        );
        assert!(hex_decode("abc").is_err());
        assert!(hex_decode("zz").is_err());
    }
}
