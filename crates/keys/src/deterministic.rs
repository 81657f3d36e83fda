//! Deterministic ECDSA signatures (RFC 6979) for P-256 and P-384.
//!
//! aws-lc-rs draws a fresh random nonce for every ECDSA signature, so two
//! signers holding the same key sign the same data differently. RFC 6979
//! section 3.2 derives the nonce from the private key and the message hash
//! with HMAC-DRBG instead, which makes the signature a function of key and
//! data alone. Verifiers cannot tell the two kinds apart.
//!
//! The signer here comes from the RustCrypto `p256` and `p384` crates,
//! loaded from the same PKCS #8 document as the aws-lc-rs key. Their
//! signing keys wipe the private scalar on drop, and the document is held
//! in a [`zeroize::Zeroizing`] buffer only while it is parsed.
//!
//! Signatures use the DNSSEC form of RFC 6605 section 4: `r || s`, each
//! left-padded to the size of the curve order (32 or 48 octets).
//!
//! Limitations: slower than aws-lc-rs (see `docs/BENCHMARKS.md`), so it is
//! used only when a caller asks for deterministic signatures.

use p256::pkcs8::DecodePrivateKey;
use p384::ecdsa::signature::Signer as _;

use crate::algorithm::Algorithm;
use crate::error::KeyError;

/// An ECDSA private key that signs with RFC 6979 nonces.
pub(crate) enum Rfc6979Key {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
}

impl Rfc6979Key {
    /// Loads the key from an unencrypted PKCS #8 document of an ECDSA key.
    pub(crate) fn from_pkcs8(algorithm: Algorithm, der: &[u8]) -> Result<Self, KeyError> {
        let invalid = |source| KeyError::DeterministicKey {
            algorithm,
            source: Box::new(source),
        };
        match algorithm {
            Algorithm::EcdsaP256Sha256 => p256::ecdsa::SigningKey::from_pkcs8_der(der)
                .map(Self::P256)
                .map_err(invalid),
            Algorithm::EcdsaP384Sha384 => p384::ecdsa::SigningKey::from_pkcs8_der(der)
                .map(Self::P384)
                .map_err(invalid),
            _ => Err(KeyError::NotDeterministic { algorithm }),
        }
    }

    /// Hashes `data` with the curve's hash (SHA-256 or SHA-384), signs it
    /// and returns `r || s`.
    pub(crate) fn sign(&self, data: &[u8]) -> Result<Vec<u8>, KeyError> {
        match self {
            Self::P256(key) => {
                let failed = |source| KeyError::DeterministicSign {
                    algorithm: Algorithm::EcdsaP256Sha256,
                    source,
                };
                let signature: p256::ecdsa::Signature = key.try_sign(data).map_err(failed)?;
                Ok(signature.to_bytes().to_vec())
            }
            Self::P384(key) => {
                let failed = |source| KeyError::DeterministicSign {
                    algorithm: Algorithm::EcdsaP384Sha384,
                    source,
                };
                let signature: p384::ecdsa::Signature = key.try_sign(data).map_err(failed)?;
                Ok(signature.to_bytes().to_vec())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keypair::KeyPair;
    use crate::verify::verify;

    /// One signature of RFC 6979 appendix A.2: message, expected `r || s`.
    type Vector = (&'static [u8], &'static str);

    // RFC 6979 appendix A.2.5, ECDSA P-256: private key x, public key
    // Ux || Uy, and the SHA-256 signatures of "sample" and "test".
    const P256_X: &str = "C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721";
    const P256_U: &str = "60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6\
                          7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299";
    const P256_SHA256: [Vector; 2] = [
        (
            b"sample",
            "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716\
             F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8",
        ),
        (
            b"test",
            "F1ABB023518351CD71D881567B1EA663ED3EFCF6C5132B354F28D3B0B7D38367\
             019F4113742A2B14BD25926B49C649155F267E60D3814B4C0CC84250E46F0083",
        ),
    ];

    // RFC 6979 appendix A.2.6, ECDSA P-384, with the SHA-384 signatures.
    const P384_X: &str = "6B9D3DAD2E1B8C1C05B19875B6659F4DE23C3B667BF297BA9AA47740787137D8\
                          96D5724E4C70A825F872C9EA60D2EDF5";
    const P384_U: &str = "EC3A4E415B4E19A4568618029F427FA5DA9A8BC4AE92E02E06AAE5286B300C64\
                          DEF8F0EA9055866064A254515480BC13\
                          8015D9B72D7D57244EA8EF9AC0C621896708A59367F9DFB9F54CA84B3F1C9DB1\
                          288B231C3AE0D4FE7344FD2533264720";
    const P384_SHA384: [Vector; 2] = [
        (
            b"sample",
            "94EDBB92A5ECB8AAD4736E56C691916B3F88140666CE9FA73D64C4EA95AD133C\
             81A648152E44ACF96E36DD1E80FABE46\
             99EF4AEB15F178CEA1FE40DB2603138F130E740A19624526203B6351D0A3A94F\
             A329C145786E679E7B82C71A38628AC8",
        ),
        (
            b"test",
            "8203B63D3C853E8D77227FB377BCF7B7B772E97892A80F36AB775D509D7A5FEB\
             0542A7F0812998DA8F1DD3CA3CF023DB\
             DDD0760448D42D8A43AF45AF836FCE4DE8BE06B485E9B61B827C2F13173923E0\
             6A739F040649A667BF3B828246BAA5A5",
        ),
    ];

    fn hex(text: &str) -> Vec<u8> {
        data_encoding::HEXUPPER.decode(text.as_bytes()).unwrap()
    }

    /// Loads the RFC key through aws-lc-rs, as BIND key files are, and
    /// checks each signature against the RFC and against aws-lc-rs.
    fn check(algorithm: Algorithm, x: &str, u: &str, vectors: &[Vector]) {
        let pair = KeyPair::from_ecdsa_scalar(algorithm, &hex(x)).unwrap();
        assert_eq!(pair.public_key().as_ref(), hex(u), "{algorithm} public key");
        for &(message, expected) in vectors {
            let signature = pair.sign_deterministic(message).unwrap();
            assert_eq!(
                data_encoding::HEXUPPER.encode(&signature),
                expected,
                "{algorithm} {:?}",
                String::from_utf8_lossy(message)
            );
            let number = algorithm.to_u8();
            assert_eq!(
                verify(number, &pair.public_key(), message, &signature),
                Ok(())
            );
            assert!(verify(number, &pair.public_key(), b"other", &signature).is_err());
        }
    }

    #[test]
    fn p256_matches_rfc6979_a_2_5() {
        check(Algorithm::EcdsaP256Sha256, P256_X, P256_U, &P256_SHA256);
    }

    #[test]
    fn p384_matches_rfc6979_a_2_6() {
        check(Algorithm::EcdsaP384Sha384, P384_X, P384_U, &P384_SHA384);
    }

    #[test]
    fn other_algorithms_have_no_rfc6979_key() {
        let Err(error) = Rfc6979Key::from_pkcs8(Algorithm::Ed25519, &[]) else {
            panic!("an Ed25519 key was accepted");
        };
        assert!(matches!(error, KeyError::NotDeterministic { .. }));
    }

    #[test]
    fn pkcs8_of_other_curve_rejected() {
        let pair = KeyPair::generate(Algorithm::EcdsaP384Sha384, None).unwrap();
        let document = pair.to_pkcs8();
        let Err(error) = Rfc6979Key::from_pkcs8(Algorithm::EcdsaP256Sha256, &document) else {
            panic!("a P-384 document was accepted as P-256");
        };
        assert!(matches!(error, KeyError::DeterministicKey { .. }));
    }
}
