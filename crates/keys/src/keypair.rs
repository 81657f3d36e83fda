//! Private keys: generation, PKCS #8 storage and signing.
//!
//! A [`KeyPair`] keeps the private key in aws-lc-rs objects. AWS-LC wipes
//! every heap allocation in `OPENSSL_free` before releasing it (aws-lc-sys
//! 0.47, `crypto/mem.c`), so the key material is cleared when the last clone
//! of a `KeyPair` is dropped. Copies that this crate makes, such as PKCS #8
//! documents and BIND fields, are held in [`Zeroizing`] buffers.
//!
//! Signatures use the DNSSEC formats: RSASSA-PKCS1-v1_5 (RFC 3110, RFC 5702),
//! ECDSA as the fixed-size concatenation `r || s` (RFC 6605 section 4) and
//! plain Ed25519 (RFC 8080).
//!
//! [`KeyPair::sign`] is the fast path and signs through aws-lc-rs, whose
//! ECDSA nonces are random. [`KeyPair::sign_deterministic`] makes every
//! signature a function of key and data alone: RSASSA-PKCS1-v1_5 and
//! Ed25519 are deterministic already, and ECDSA then takes its nonce from
//! RFC 6979, through the RustCrypto `p256` and `p384` crates. The RFC 6979 key is built from
//! the PKCS #8 document on first use and wiped with the `KeyPair`.
//!
//! Limitations: aws-lc-rs loads and generates RSA private keys of 2048 to
//! 8192 bits only, so older 1024-bit RSA keys cannot be imported for signing
//! (they can still be verified, see [`crate::verify`]). Ed448 cannot be
//! generated or used for signing.

use std::fmt;
use std::sync::{Arc, OnceLock};

use aws_lc_rs::encoding::{AsBigEndian, AsDer};
use aws_lc_rs::rsa::{self, KeySize};
use aws_lc_rs::signature::{
    EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair, KeyPair as _,
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, RSA_PKCS1_SHA256,
    RSA_PKCS1_SHA512,
};
use bytes::{BufMut, Bytes, BytesMut};
use zeroize::Zeroizing;

use crate::algorithm::Algorithm;
use crate::der;
use crate::deterministic::Rfc6979Key;
use crate::dnskey::{key_tag, Dnskey};
use crate::error::KeyError;

/// RSA key size used when [`KeyPair::generate`] is given none.
pub const DEFAULT_RSA_BITS: u32 = 2048;

/// A key that signs data for DNSSEC.
///
/// [`KeyPair`] implements it for keys held in memory; a key held in an HSM
/// can implement it as well.
pub trait Signer: Send + Sync {
    /// Returns the key's algorithm.
    fn algorithm(&self) -> Algorithm;

    /// Returns the public key in the DNSKEY public-key field format.
    fn public_key(&self) -> Bytes;

    /// Signs `data` and returns the signature in the DNSSEC format of the
    /// algorithm.
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, KeyError>;

    /// Signs `data` so that the same key and data always give the same
    /// signature, in the DNSSEC format of the algorithm.
    ///
    /// The default returns [`KeyError::NotDeterministic`]. [`KeyPair`]
    /// signs ECDSA with RFC 6979 nonces.
    fn sign_deterministic(&self, data: &[u8]) -> Result<Vec<u8>, KeyError> {
        let _ = data;
        Err(KeyError::NotDeterministic {
            algorithm: self.algorithm(),
        })
    }
}

/// A private key with its public key.
///
/// Cloning is cheap (a reference count), and `sign` takes no lock, so one
/// key can sign on many threads at once. `Debug` prints the algorithm and
/// key tags only.
#[derive(Clone)]
pub struct KeyPair {
    inner: Arc<Inner>,
}

struct Inner {
    algorithm: Algorithm,
    public_key: Bytes,
    material: Material,
    /// The RFC 6979 signer of an ECDSA key, built on first use.
    rfc6979: OnceLock<Rfc6979Key>,
}

/// The aws-lc-rs private key object.
pub(crate) enum Material {
    Rsa(rsa::KeyPair),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl KeyPair {
    /// Generates a new key.
    ///
    /// `rsa_bits` sets the RSA modulus size (2048 if `None`) and must be
    /// `None` for other algorithms. Ed448 returns
    /// [`KeyError::UnsupportedAlgorithm`].
    pub fn generate(algorithm: Algorithm, rsa_bits: Option<u32>) -> Result<Self, KeyError> {
        if rsa_bits.is_some() && !algorithm.is_rsa() {
            return Err(KeyError::RsaSizeForNonRsa { algorithm });
        }
        let failed = |source| KeyError::Generate { algorithm, source };
        let material = match algorithm {
            Algorithm::RsaSha256 | Algorithm::RsaSha512 => {
                let bits = rsa_bits.unwrap_or(DEFAULT_RSA_BITS);
                let size = match bits {
                    2048 => KeySize::Rsa2048,
                    3072 => KeySize::Rsa3072,
                    4096 => KeySize::Rsa4096,
                    8192 => KeySize::Rsa8192,
                    _ => return Err(KeyError::UnsupportedRsaSize { bits }),
                };
                Material::Rsa(rsa::KeyPair::generate(size).map_err(failed)?)
            }
            Algorithm::EcdsaP256Sha256 | Algorithm::EcdsaP384Sha384 => {
                let curve = ecdsa_algorithm(algorithm)?;
                Material::Ecdsa(EcdsaKeyPair::generate(curve).map_err(failed)?)
            }
            Algorithm::Ed25519 => Material::Ed25519(Ed25519KeyPair::generate().map_err(failed)?),
            // TODO: support Ed448 once aws-lc-rs can sign with it; version
            // 1.19 has no Ed448 at all.
            Algorithm::Ed448 => return Err(KeyError::UnsupportedAlgorithm { algorithm }),
        };
        Self::from_material(algorithm, material)
    }

    /// Loads a key from an unencrypted PKCS #8 document written by
    /// [`KeyPair::to_pkcs8`].
    pub fn from_pkcs8(algorithm: Algorithm, der: &[u8]) -> Result<Self, KeyError> {
        let invalid = |source| KeyError::InvalidPrivateKey { algorithm, source };
        let material = match algorithm {
            Algorithm::RsaSha256 | Algorithm::RsaSha512 => {
                Material::Rsa(rsa::KeyPair::from_pkcs8(der).map_err(invalid)?)
            }
            Algorithm::EcdsaP256Sha256 | Algorithm::EcdsaP384Sha384 => {
                let curve = ecdsa_algorithm(algorithm)?;
                Material::Ecdsa(EcdsaKeyPair::from_pkcs8(curve, der).map_err(invalid)?)
            }
            Algorithm::Ed25519 => {
                Material::Ed25519(Ed25519KeyPair::from_pkcs8(der).map_err(invalid)?)
            }
            Algorithm::Ed448 => return Err(KeyError::UnsupportedAlgorithm { algorithm }),
        };
        Self::from_material(algorithm, material)
    }

    /// Loads an RSA key from its integers, big-endian, as BIND stores them.
    pub(crate) fn from_rsa_components(
        algorithm: Algorithm,
        components: &der::RsaPrivateComponents,
    ) -> Result<Self, KeyError> {
        if !algorithm.is_rsa() {
            return Err(KeyError::UnsupportedAlgorithm { algorithm });
        }
        let bits = significant_bits(&components.modulus);
        if !(2048..=8192).contains(&bits) {
            return Err(KeyError::UnsupportedRsaKeySize { bits });
        }
        let key = rsa::KeyPairComponents {
            public_key: rsa::PublicKeyComponents {
                n: strip_zeros(&components.modulus),
                e: strip_zeros(&components.public_exponent),
            },
            d: &components.private_exponent[..],
            p: &components.prime1[..],
            q: &components.prime2[..],
            dP: &components.exponent1[..],
            dQ: &components.exponent2[..],
            qInv: &components.coefficient[..],
        };
        let key = rsa::KeyPair::from_components(&key)
            .map_err(|source| KeyError::InvalidPrivateKey { algorithm, source })?;
        Self::from_material(algorithm, Material::Rsa(key))
    }

    /// Loads an ECDSA key from its private scalar, big-endian.
    pub(crate) fn from_ecdsa_scalar(algorithm: Algorithm, scalar: &[u8]) -> Result<Self, KeyError> {
        let curve = ecdsa_algorithm(algorithm)?;
        let agreement = match algorithm {
            Algorithm::EcdsaP256Sha256 => &aws_lc_rs::agreement::ECDH_P256,
            _ => &aws_lc_rs::agreement::ECDH_P384,
        };
        let invalid = |source| KeyError::InvalidPrivateKey { algorithm, source };
        let scalar = &fixed_width_scalar(algorithm, scalar);

        // aws-lc-rs builds an ECDSA key from the scalar and the public point
        // only, so derive the point through the ECDH key type first.
        let private = aws_lc_rs::agreement::PrivateKey::from_private_key(agreement, scalar)
            .map_err(invalid)?;
        let public = private
            .compute_public_key()
            .map_err(|source| KeyError::PublicKey { algorithm, source })?;
        let key = EcdsaKeyPair::from_private_key_and_public_key(curve, scalar, public.as_ref())
            .map_err(invalid)?;
        Self::from_material(algorithm, Material::Ecdsa(key))
    }

    /// Loads an Ed25519 key from its 32-octet seed.
    pub(crate) fn from_ed25519_seed(seed: &[u8]) -> Result<Self, KeyError> {
        let algorithm = Algorithm::Ed25519;
        let key = Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|source| KeyError::InvalidPrivateKey { algorithm, source })?;
        Self::from_material(algorithm, Material::Ed25519(key))
    }

    fn from_material(algorithm: Algorithm, material: Material) -> Result<Self, KeyError> {
        let public_key = match &material {
            Material::Rsa(key) => {
                let (modulus, exponent) = der::rsa_public_key(key.public_key().as_ref())
                    .ok_or(KeyError::UnexpectedDer { algorithm })?;
                rsa_dnskey_public_key(&modulus, &exponent)
            }
            // Drop the 0x04 prefix of the uncompressed point (RFC 6605 section 4).
            Material::Ecdsa(key) => Bytes::copy_from_slice(&key.public_key().as_ref()[1..]),
            Material::Ed25519(key) => Bytes::copy_from_slice(key.public_key().as_ref()),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                algorithm,
                public_key,
                material,
                rfc6979: OnceLock::new(),
            }),
        })
    }

    /// Returns the key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.inner.algorithm
    }

    /// Returns the public key in the DNSKEY public-key field format: RFC 3110
    /// for RSA, `x || y` for ECDSA (RFC 6605), the raw key for Ed25519.
    pub fn public_key(&self) -> Bytes {
        self.inner.public_key.clone()
    }

    /// Returns the DNSKEY record data for this key with `flags`.
    pub fn dnskey(&self, flags: u16) -> Dnskey {
        Dnskey::new(flags, self.algorithm().to_u8(), self.public_key())
    }

    /// Returns the DNSKEY RDATA: flags, protocol 3, algorithm, public key.
    pub fn dnskey_rdata(&self, flags: u16) -> Bytes {
        self.dnskey(flags).to_rdata()
    }

    /// Returns the key tag of this key's DNSKEY with `flags`.
    pub fn key_tag(&self, flags: u16) -> u16 {
        key_tag(&self.dnskey_rdata(flags))
    }

    /// Signs `data` and returns the signature in DNSSEC format.
    pub fn sign(&self, data: &[u8]) -> Result<Vec<u8>, KeyError> {
        let algorithm = self.algorithm();
        let failed = |source| KeyError::Sign { algorithm, source };
        match &self.inner.material {
            Material::Rsa(key) => {
                let padding = match algorithm {
                    Algorithm::RsaSha512 => &RSA_PKCS1_SHA512,
                    _ => &RSA_PKCS1_SHA256,
                };
                let mut signature = vec![0; key.public_modulus_len()];
                let rng = aws_lc_rs::rand::SystemRandom::new();
                key.sign(padding, &rng, data, &mut signature)
                    .map_err(failed)?;
                Ok(signature)
            }
            Material::Ecdsa(key) => {
                let rng = aws_lc_rs::rand::SystemRandom::new();
                let signature = key.sign(&rng, data).map_err(failed)?;
                Ok(signature.as_ref().to_vec())
            }
            Material::Ed25519(key) => Ok(key.try_sign(data).map_err(failed)?.as_ref().to_vec()),
        }
    }

    /// Signs `data` deterministically and returns the signature in DNSSEC
    /// format: ECDSA with RFC 6979 nonces, RSA and Ed25519 as
    /// [`KeyPair::sign`] does, since both are deterministic already.
    ///
    /// Two `KeyPair`s loaded from the same private key give byte-identical
    /// signatures over the same data. ECDSA through this path is slower
    /// than [`KeyPair::sign`].
    pub fn sign_deterministic(&self, data: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.inner.material {
            Material::Ecdsa(_) => self.rfc6979_key()?.sign(data),
            Material::Rsa(_) | Material::Ed25519(_) => self.sign(data),
        }
    }

    /// Returns the RFC 6979 signer, building it from the PKCS #8 document
    /// the first time.
    fn rfc6979_key(&self) -> Result<&Rfc6979Key, KeyError> {
        if let Some(key) = self.inner.rfc6979.get() {
            return Ok(key);
        }
        let key = Rfc6979Key::from_pkcs8(self.algorithm(), &self.to_pkcs8())?;
        // If another thread set the key first, its key is kept: it is the
        // same key, and this copy is wiped on drop.
        let _ = self.inner.rfc6979.set(key);
        Ok(self
            .inner
            .rfc6979
            .get()
            .expect("the RFC 6979 key was just set"))
    }

    /// Returns the key as an unencrypted PKCS #8 document for storage.
    ///
    /// Callers must encrypt it before it leaves memory, for example with
    /// [`crate::kek::KeyEncryptionKey::seal`].
    pub fn to_pkcs8(&self) -> Zeroizing<Vec<u8>> {
        // Serialising a key that aws-lc-rs has already parsed fails only when
        // AWS-LC cannot allocate memory, so a panic here means out of memory.
        let document = match &self.inner.material {
            Material::Rsa(key) => key.as_der().map(|der| der.as_ref().to_vec()),
            Material::Ecdsa(key) => key.to_pkcs8v1().map(|der| der.as_ref().to_vec()),
            Material::Ed25519(key) => key.to_pkcs8v1().map(|der| der.as_ref().to_vec()),
        };
        Zeroizing::new(document.expect("serialise a key held by aws-lc-rs"))
    }

    /// Returns the private key fields for export in the BIND format.
    pub(crate) fn material(&self) -> &Material {
        &self.inner.material
    }

    /// Returns the RSA key integers.
    pub(crate) fn rsa_components(&self) -> Result<der::RsaPrivateComponents, KeyError> {
        let algorithm = self.algorithm();
        match &self.inner.material {
            Material::Rsa(_) => der::rsa_private_key_from_pkcs8(&self.to_pkcs8())
                .ok_or(KeyError::UnexpectedDer { algorithm }),
            _ => Err(KeyError::UnsupportedAlgorithm { algorithm }),
        }
    }

    /// Returns the ECDSA private scalar or the Ed25519 seed.
    pub(crate) fn private_octets(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let algorithm = self.algorithm();
        let unexpected = |_| KeyError::UnexpectedDer { algorithm };
        match &self.inner.material {
            Material::Rsa(_) => Err(KeyError::UnsupportedAlgorithm { algorithm }),
            Material::Ecdsa(key) => {
                let scalar = key.private_key().as_be_bytes().map_err(unexpected)?;
                Ok(Zeroizing::new(scalar.as_ref().to_vec()))
            }
            Material::Ed25519(key) => {
                let seed = key.seed().map_err(unexpected)?;
                let seed = seed.as_be_bytes().map_err(unexpected)?;
                Ok(Zeroizing::new(seed.as_ref().to_vec()))
            }
        }
    }
}

impl Signer for KeyPair {
    fn algorithm(&self) -> Algorithm {
        Self::algorithm(self)
    }

    fn public_key(&self) -> Bytes {
        Self::public_key(self)
    }

    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, KeyError> {
        Self::sign(self, data)
    }

    fn sign_deterministic(&self, data: &[u8]) -> Result<Vec<u8>, KeyError> {
        Self::sign_deterministic(self, data)
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("algorithm", &self.algorithm())
            .field("key_tag_flags_256", &self.key_tag(256))
            .field("key_tag_flags_257", &self.key_tag(257))
            .finish_non_exhaustive()
    }
}

fn ecdsa_algorithm(algorithm: Algorithm) -> Result<&'static EcdsaSigningAlgorithm, KeyError> {
    match algorithm {
        Algorithm::EcdsaP256Sha256 => Ok(&ECDSA_P256_SHA256_FIXED_SIGNING),
        Algorithm::EcdsaP384Sha384 => Ok(&ECDSA_P384_SHA384_FIXED_SIGNING),
        _ => Err(KeyError::UnsupportedAlgorithm { algorithm }),
    }
}

fn strip_zeros(octets: &[u8]) -> &[u8] {
    let start = octets.iter().position(|&o| o != 0).unwrap_or(octets.len());
    &octets[start..]
}

/// Returns the number of significant bits of a big-endian integer.
pub(crate) fn significant_bits(integer: &[u8]) -> usize {
    let integer = strip_zeros(integer);
    match integer.first() {
        Some(&first) => integer.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

/// Encodes an RSA public key for DNSKEY (RFC 3110 section 2): the exponent
/// length in one octet, or a zero octet and two length octets for exponents
/// over 255 octets, then the exponent and the modulus.
pub(crate) fn rsa_dnskey_public_key(modulus: &[u8], exponent: &[u8]) -> Bytes {
    let mut key = BytesMut::with_capacity(3 + exponent.len() + modulus.len());
    match u8::try_from(exponent.len()) {
        Ok(len) => key.put_u8(len),
        Err(_) => {
            key.put_u8(0);
            // An exponent never approaches 64 KiB: aws-lc-rs limits it to 33 bits.
            key.put_u16(exponent.len() as u16);
        }
    }
    key.put_slice(exponent);
    key.put_slice(modulus);
    key.freeze()
}

/// Splits an RFC 3110 public key into modulus and exponent.
pub(crate) fn rsa_split_public_key(key: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = key.split_first()?;
    let (len, rest) = if first == 0 {
        if rest.len() < 2 {
            return None;
        }
        (
            usize::from(u16::from_be_bytes([rest[0], rest[1]])),
            &rest[2..],
        )
    } else {
        (usize::from(first), rest)
    };
    if len == 0 || rest.len() <= len {
        return None;
    }
    let (exponent, modulus) = rest.split_at(len);
    Some((modulus, exponent))
}

/// Returns an ECDSA private scalar at the width of its curve (32 octets
/// for P-256, 48 for P-384). BIND's dnssec-keygen writes the scalar as a
/// big number without leading zero octets (4 of 500 P-256 keys in one
/// trial). Other lengths are returned unchanged for the key parser to reject.
fn fixed_width_scalar(algorithm: Algorithm, scalar: &[u8]) -> Vec<u8> {
    let width = match algorithm {
        Algorithm::EcdsaP256Sha256 => 32,
        _ => 48,
    };
    let significant = scalar
        .iter()
        .position(|octet| *octet != 0)
        .map_or(&[][..], |first| &scalar[first..]);
    if scalar.len() == width || significant.len() > width {
        return scalar.to_vec();
    }
    let mut fixed = vec![0; width - significant.len()];
    fixed.extend_from_slice(significant);
    fixed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::verify;

    #[test]
    fn short_ecdsa_scalar_loads() {
        for (algorithm, width) in [
            (Algorithm::EcdsaP256Sha256, 32),
            (Algorithm::EcdsaP384Sha384, 48),
        ] {
            let mut scalar = vec![0x5a; width];
            scalar[0] = 0;
            let full = KeyPair::from_ecdsa_scalar(algorithm, &scalar).unwrap();
            let short = KeyPair::from_ecdsa_scalar(algorithm, &scalar[1..]).unwrap();
            assert_eq!(short.public_key(), full.public_key(), "{algorithm}");
            let too_long = [vec![1], scalar.clone()].concat();
            assert!(KeyPair::from_ecdsa_scalar(algorithm, &too_long).is_err());
        }
    }

    #[test]
    fn p256_sign_verifies() {
        let key = KeyPair::generate(Algorithm::EcdsaP256Sha256, None).unwrap();
        assert_eq!(key.public_key().len(), 64);
        let signature = key.sign(b"data").unwrap();
        assert_eq!(signature.len(), 64);
        assert!(verify(13, &key.public_key(), b"data", &signature).is_ok());
        assert!(verify(13, &key.public_key(), b"other", &signature).is_err());
    }

    /// The algorithms that can be generated, with their public key and
    /// signature lengths in octets.
    const GENERATED: [(Algorithm, usize, usize); 5] = [
        (Algorithm::RsaSha256, 4 + 256, 256),
        (Algorithm::RsaSha512, 4 + 256, 256),
        (Algorithm::EcdsaP256Sha256, 64, 64),
        (Algorithm::EcdsaP384Sha384, 96, 96),
        (Algorithm::Ed25519, 32, 64),
    ];

    #[test]
    fn generated_keys_sign_and_verify() {
        for (algorithm, public_len, signature_len) in GENERATED {
            let key = KeyPair::generate(algorithm, None).unwrap();
            assert_eq!(key.algorithm(), algorithm);
            assert_eq!(key.public_key().len(), public_len, "{algorithm}");
            let signature = key.sign(b"data").unwrap();
            assert_eq!(signature.len(), signature_len, "{algorithm}");
            let number = algorithm.to_u8();
            assert_eq!(
                verify(number, &key.public_key(), b"data", &signature),
                Ok(())
            );
            assert!(verify(number, &key.public_key(), b"dat", &signature).is_err());
        }
    }

    #[test]
    fn rsa_public_key_uses_rfc3110() {
        let key = KeyPair::generate(Algorithm::RsaSha256, Some(3072)).unwrap();
        let public_key = key.public_key();
        // Exponent 65537 in three octets, then a 3072-bit modulus.
        assert_eq!(&public_key[..4], &[3, 1, 0, 1]);
        assert_eq!(public_key.len(), 4 + 384);
        assert!(public_key[4] & 0x80 != 0);
    }

    #[test]
    fn pkcs8_round_trips() {
        for (algorithm, _, _) in GENERATED {
            let key = KeyPair::generate(algorithm, None).unwrap();
            let restored = KeyPair::from_pkcs8(algorithm, &key.to_pkcs8()).unwrap();
            assert_eq!(restored.public_key(), key.public_key(), "{algorithm}");
            let signature = restored.sign(b"data").unwrap();
            let number = algorithm.to_u8();
            assert_eq!(
                verify(number, &key.public_key(), b"data", &signature),
                Ok(())
            );
        }
    }

    #[test]
    fn deterministic_signatures_repeat_across_loads() {
        for (algorithm, _, signature_len) in GENERATED {
            let key = KeyPair::generate(algorithm, None).unwrap();
            let first = KeyPair::from_pkcs8(algorithm, &key.to_pkcs8()).unwrap();
            let second = KeyPair::from_pkcs8(algorithm, &key.to_pkcs8()).unwrap();
            let signature = first.sign_deterministic(b"data").unwrap();
            assert_eq!(signature.len(), signature_len, "{algorithm}");
            assert_eq!(second.sign_deterministic(b"data").unwrap(), signature);
            assert_ne!(first.sign_deterministic(b"datb").unwrap(), signature);
            let number = algorithm.to_u8();
            assert_eq!(
                verify(number, &key.public_key(), b"data", &signature),
                Ok(())
            );
        }
    }

    #[test]
    fn aws_lc_ecdsa_signatures_are_random() {
        let key = KeyPair::generate(Algorithm::EcdsaP256Sha256, None).unwrap();
        assert_ne!(key.sign(b"data").unwrap(), key.sign(b"data").unwrap());
    }

    #[test]
    fn pkcs8_other_algorithm_rejected() {
        let key = KeyPair::generate(Algorithm::EcdsaP256Sha256, None).unwrap();
        let document = key.to_pkcs8();
        for algorithm in [
            Algorithm::EcdsaP384Sha384,
            Algorithm::Ed25519,
            Algorithm::RsaSha256,
        ] {
            let error = KeyPair::from_pkcs8(algorithm, &document).unwrap_err();
            assert!(
                matches!(error, KeyError::InvalidPrivateKey { .. }),
                "{algorithm}"
            );
        }
        assert!(KeyPair::from_pkcs8(Algorithm::EcdsaP256Sha256, &document[1..]).is_err());
    }

    #[test]
    fn key_pair_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<KeyPair>();
        assert_send_sync::<Arc<dyn Signer>>();
    }

    #[test]
    fn parallel_signing_verifies() {
        use rayon::prelude::*;
        let key = KeyPair::generate(Algorithm::EcdsaP256Sha256, None).unwrap();
        let public_key = key.public_key();
        let results: Vec<bool> = (0..256u32)
            .into_par_iter()
            .map(|i| {
                let data = i.to_be_bytes();
                let signature = key.sign(&data).unwrap();
                verify(13, &public_key, &data, &signature).is_ok()
            })
            .collect();
        assert_eq!(results.len(), 256);
        assert!(results.iter().all(|&ok| ok));
    }

    #[test]
    fn debug_hides_rsa_private_key() {
        let key = KeyPair::generate(Algorithm::RsaSha256, None).unwrap();
        let text = format!("{key:?}");
        let components = key.rsa_components().unwrap();
        let exponent = data_encoding::BASE64.encode(&components.private_exponent);
        let prime = data_encoding::HEXLOWER.encode(&components.prime1[..8]);
        assert!(!text.contains(&exponent[..16]));
        assert!(!text.contains(&prime));
        assert!(text.contains("RsaSha256"), "{text}");
    }

    #[test]
    fn ed448_generation_unsupported() {
        let error = KeyPair::generate(Algorithm::Ed448, None).unwrap_err();
        assert!(matches!(error, KeyError::UnsupportedAlgorithm { .. }));
        assert!(error.to_string().contains("ED448 (16)"));
    }

    #[test]
    fn rsa_1024_generation_rejected() {
        let error = KeyPair::generate(Algorithm::RsaSha256, Some(1024)).unwrap_err();
        assert!(matches!(error, KeyError::UnsupportedRsaSize { bits: 1024 }));
    }

    #[test]
    fn rsa_size_for_ecdsa_rejected() {
        let error = KeyPair::generate(Algorithm::EcdsaP256Sha256, Some(2048)).unwrap_err();
        assert!(matches!(error, KeyError::RsaSizeForNonRsa { .. }));
    }

    #[test]
    fn debug_hides_key_material() {
        let key = KeyPair::generate(Algorithm::Ed25519, None).unwrap();
        let text = format!("{key:?}");
        let seed = key.private_octets().unwrap();
        let seed_hex = data_encoding::HEXLOWER.encode(&seed);
        let seed_base64 = data_encoding::BASE64.encode(&seed);
        assert!(text.starts_with("KeyPair { algorithm: Ed25519"), "{text}");
        assert!(!text.contains(&seed_hex));
        assert!(!text.contains(&seed_base64));
        assert!(!text.contains(&format!("{:?}", &seed[..4])));
    }

    #[test]
    fn rfc3110_public_key_round_trips() {
        let encoded = rsa_dnskey_public_key(&[0xc1, 0x5c], &[1, 0, 1]);
        assert_eq!(&encoded[..], &[3, 1, 0, 1, 0xc1, 0x5c]);
        let (modulus, exponent) = rsa_split_public_key(&encoded).unwrap();
        assert_eq!(modulus, [0xc1, 0x5c]);
        assert_eq!(exponent, [1, 0, 1]);
    }
}
