//! The few DER structures needed to move RSA keys between aws-lc-rs and the
//! DNSKEY and BIND formats: `RSAPublicKey` and `RSAPrivateKey` (RFC 8017
//! Appendix A.1) and the PKCS #8 `PrivateKeyInfo` wrapper (RFC 5208).
//!
//! The reader accepts definite lengths up to four length octets and reads
//! only the fields it needs. It returns `None` on anything else, because
//! its input always comes from aws-lc-rs, which writes strict DER.

use zeroize::Zeroizing;

const TAG_INTEGER: u8 = 0x02;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_SEQUENCE: u8 = 0x30;

/// The integers of an RSA private key, big-endian without leading zeros.
pub(crate) struct RsaPrivateComponents {
    pub(crate) modulus: Vec<u8>,
    pub(crate) public_exponent: Vec<u8>,
    pub(crate) private_exponent: Zeroizing<Vec<u8>>,
    pub(crate) prime1: Zeroizing<Vec<u8>>,
    pub(crate) prime2: Zeroizing<Vec<u8>>,
    pub(crate) exponent1: Zeroizing<Vec<u8>>,
    pub(crate) exponent2: Zeroizing<Vec<u8>>,
    pub(crate) coefficient: Zeroizing<Vec<u8>>,
}

/// Splits one element off `input`, returning its tag, contents and the rest.
fn read_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |len, &octet| (len << 8) | usize::from(octet));
        rest = &rest[count..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// Splits one element with tag `expected` off `input`.
fn expect_element(input: &[u8], expected: u8) -> Option<(&[u8], &[u8])> {
    let (tag, contents, rest) = read_element(input)?;
    (tag == expected).then_some((contents, rest))
}

/// Returns a non-negative INTEGER's contents without leading zero octets.
fn unsigned(contents: &[u8]) -> &[u8] {
    let start = contents
        .iter()
        .position(|&octet| octet != 0)
        .unwrap_or(contents.len());
    &contents[start..]
}

/// Reads the modulus and public exponent from a DER `RSAPublicKey`.
pub(crate) fn rsa_public_key(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let (sequence, _) = expect_element(der, TAG_SEQUENCE)?;
    let (modulus, rest) = expect_element(sequence, TAG_INTEGER)?;
    let (exponent, _) = expect_element(rest, TAG_INTEGER)?;
    Some((unsigned(modulus).to_vec(), unsigned(exponent).to_vec()))
}

/// Reads the key integers from a PKCS #8 document holding an RSA key.
pub(crate) fn rsa_private_key_from_pkcs8(pkcs8: &[u8]) -> Option<RsaPrivateComponents> {
    // PrivateKeyInfo ::= SEQUENCE { version, algorithm, privateKey OCTET STRING, .. }
    let (info, _) = expect_element(pkcs8, TAG_SEQUENCE)?;
    let (_version, rest) = expect_element(info, TAG_INTEGER)?;
    let (_algorithm, rest) = expect_element(rest, TAG_SEQUENCE)?;
    let (private_key, _) = expect_element(rest, TAG_OCTET_STRING)?;

    // RSAPrivateKey ::= SEQUENCE { version, n, e, d, p, q, dP, dQ, qInv }
    let (key, _) = expect_element(private_key, TAG_SEQUENCE)?;
    let (_version, mut rest) = expect_element(key, TAG_INTEGER)?;
    let mut integers: Vec<&[u8]> = Vec::with_capacity(8);
    for _ in 0..8 {
        let (contents, next) = expect_element(rest, TAG_INTEGER)?;
        integers.push(unsigned(contents));
        rest = next;
    }
    let secret = |i: usize| Zeroizing::new(integers[i].to_vec());
    Some(RsaPrivateComponents {
        modulus: integers[0].to_vec(),
        public_exponent: integers[1].to_vec(),
        private_exponent: secret(2),
        prime1: secret(3),
        prime2: secret(4),
        exponent1: secret(5),
        exponent2: secret(6),
        coefficient: secret(7),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_key_reads_integers() {
        // SEQUENCE { INTEGER 0x00c5, INTEGER 3 }
        let der = [0x30, 0x07, 0x02, 0x02, 0x00, 0xc5, 0x02, 0x01, 0x03];
        let (modulus, exponent) = rsa_public_key(&der).unwrap();
        assert_eq!(modulus, [0xc5]);
        assert_eq!(exponent, [3]);
    }

    #[test]
    fn element_rejects_truncated_length() {
        assert!(read_element(&[0x30, 0x82, 0x01]).is_none());
        assert!(read_element(&[0x30, 0x05, 0x00]).is_none());
    }
}
