//! The keys of a zone: generation by the Key Master, sealing under the
//! key-encryption key, and unsealing for the signer.
//!
//! A key's private half is sealed with AES-256-GCM before it reaches the
//! store, bound to its zone and key id so a sealed blob cannot be moved to
//! another key. Unsealed keys live only in memory as [`KeyPair`]s, which
//! zeroize on drop and print no key bytes.

use std::sync::Arc;

use keymaster_api::{KeyRole, RecordState};
use keymaster_dnssec::SigningKey;
use keymaster_keys::kek::{key_aad, KeyEncryptionKey};
use keymaster_keys::{flags, Algorithm, KeyError, KeyPair};
use keymaster_policy::{KeyLayout, Policy};
use keymaster_store::{PrivateKey, StoredKey};
use keymaster_zone::Name;

/// Error of generating or unsealing a key; never carries key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("zone {zone}: algorithm {algorithm} is not supported for new keys")]
    Algorithm { zone: String, algorithm: u8 },
    #[error("zone {zone}: cannot generate a {role:?} key")]
    Generate {
        zone: String,
        role: KeyRole,
        #[source]
        source: KeyError,
    },
    #[error("zone {zone}: private key of key {key_tag} (id {id}) cannot be unsealed")]
    Unseal {
        zone: String,
        key_tag: u16,
        id: String,
        #[source]
        source: keymaster_keys::kek::KekError,
    },
    #[error("zone {zone}: private key of key {key_tag} (id {id}) is unreadable")]
    Load {
        zone: String,
        key_tag: u16,
        id: String,
        #[source]
        source: KeyError,
    },
    #[error("zone {zone}: key {key_tag} (id {id}) lives on a PKCS#11 token, which this server cannot reach")]
    Pkcs11 {
        zone: String,
        key_tag: u16,
        id: String,
    },
}

/// Returns the DNSKEY flags for a role: KSK and CSK carry the SEP bit.
pub fn role_flags(role: KeyRole) -> u16 {
    match role {
        KeyRole::Zsk => flags::ZONE,
        KeyRole::Ksk | KeyRole::Csk => flags::ZONE | flags::SEP,
    }
}

/// Returns a fresh random key id: 16 hexadecimal digits.
pub fn new_key_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Returns the key roles a policy requires.
pub fn policy_roles(policy: &Policy) -> &'static [KeyRole] {
    match policy.keys {
        KeyLayout::KskZsk => &[KeyRole::Ksk, KeyRole::Zsk],
        KeyLayout::Csk => &[KeyRole::Csk],
    }
}

/// Generates a key for `zone` with the stable `id`, seals it and returns
/// it ready to store.
pub fn generate_key(
    kek: &KeyEncryptionKey,
    zone: &Name,
    id: String,
    role: KeyRole,
    algorithm: u8,
    rsa_bits: u32,
    now: u64,
) -> Result<StoredKey, KeyringError> {
    let zone_text = zone.to_string();
    let algorithm_enum = Algorithm::from_u8(algorithm).ok_or_else(|| KeyringError::Algorithm {
        zone: zone_text.clone(),
        algorithm,
    })?;
    let bits = algorithm_enum.is_rsa().then_some(rsa_bits);
    let pair =
        KeyPair::generate(algorithm_enum, bits).map_err(|source| KeyringError::Generate {
            zone: zone_text.clone(),
            role,
            source,
        })?;
    Ok(seal_new_key(
        kek,
        zone,
        id,
        &pair,
        role_flags(role),
        role,
        now,
    ))
}

/// Returns the key size in bits as operators quote it: the RSA modulus
/// length, or the curve size.
pub fn public_key_bits(algorithm: u8, public_key: &[u8]) -> u32 {
    match algorithm {
        8 | 10 => {
            // RFC 3110: exponent length in one octet, or zero and two more.
            let (exponent_len, header) = match public_key.first() {
                Some(0) if public_key.len() >= 3 => (
                    usize::from(u16::from_be_bytes([public_key[1], public_key[2]])),
                    3,
                ),
                Some(&len) => (usize::from(len), 1),
                None => return 0,
            };
            let modulus = public_key.get(header + exponent_len..).unwrap_or_default();
            let leading = modulus.iter().take_while(|&&b| b == 0).count();
            let significant = &modulus[leading..];
            match significant.first() {
                Some(first) => (significant.len() as u32) * 8 - first.leading_zeros(),
                None => 0,
            }
        }
        13 | 15 => 256,
        14 => 384,
        16 => 456,
        _ => (public_key.len() * 8) as u32,
    }
}

/// Unseals a stored key into a signing key for the signer.
pub fn unseal_key(
    kek: &KeyEncryptionKey,
    zone: &Name,
    key: &StoredKey,
) -> Result<SigningKey, KeyringError> {
    let pair = unseal_pair(kek, zone, key)?;
    Ok(signing_key(key, Arc::new(pair)))
}

/// Unseals a stored key's private half.
pub fn unseal_pair(
    kek: &KeyEncryptionKey,
    zone: &Name,
    key: &StoredKey,
) -> Result<KeyPair, KeyringError> {
    let zone_text = zone.to_string();
    let sealed = match &key.private {
        PrivateKey::EncryptedFile { sealed } => sealed,
        PrivateKey::Pkcs11 { .. } => {
            return Err(KeyringError::Pkcs11 {
                zone: zone_text,
                key_tag: key.key_tag,
                id: key.id.clone(),
            })
        }
    };
    let der = kek
        .open(sealed, &key_aad(zone, &key.id))
        .map_err(|source| KeyringError::Unseal {
            zone: zone_text.clone(),
            key_tag: key.key_tag,
            id: key.id.clone(),
            source,
        })?;
    let algorithm = Algorithm::from_u8(key.algorithm).ok_or_else(|| KeyringError::Algorithm {
        zone: zone_text.clone(),
        algorithm: key.algorithm,
    })?;
    KeyPair::from_pkcs8(algorithm, &der).map_err(|source| KeyringError::Load {
        zone: zone_text,
        key_tag: key.key_tag,
        id: key.id.clone(),
        source,
    })
}

/// Seals a new or imported key for storage. Every record state starts
/// hidden: the lifecycle engine decides when the key enters the zone.
pub fn seal_new_key(
    kek: &KeyEncryptionKey,
    zone: &Name,
    id: String,
    pair: &KeyPair,
    key_flags: u16,
    role: KeyRole,
    now: u64,
) -> StoredKey {
    let sealed = kek.seal(&pair.to_pkcs8(), &key_aad(zone, &id));
    StoredKey {
        zone: zone.to_string(),
        id,
        key_tag: pair.key_tag(key_flags),
        role,
        algorithm: pair.algorithm().to_u8(),
        bits: public_key_bits(pair.algorithm().to_u8(), &pair.public_key()),
        dnskey: pair.dnskey_rdata(key_flags).to_vec(),
        private: PrivateKey::EncryptedFile { sealed },
        created: now,
        published: None,
        active: None,
        retired: None,
        removed: None,
        dnskey_state: RecordState::Hidden,
        krrsig_state: RecordState::Hidden,
        zrrsig_state: RecordState::Hidden,
        ds_state: RecordState::Hidden,
    }
}

/// Describes a stored key's duties for the signer from its record states.
pub fn signing_key(key: &StoredKey, signer: Arc<dyn keymaster_keys::Signer>) -> SigningKey {
    SigningKey {
        dnskey: bytes::Bytes::from(key.dnskey.clone()),
        key_tag: key.key_tag,
        signs_keys: key.krrsig_state.in_zone(),
        signs_zone: key.zrrsig_state.in_zone(),
        published: key.dnskey_state.in_zone(),
        signer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_bits_come_from_the_modulus() {
        // Exponent 65537 in three octets, then a 2048-bit modulus.
        let mut key = vec![3, 1, 0, 1, 0xc0];
        key.extend(std::iter::repeat_n(0, 255));
        assert_eq!(public_key_bits(8, &key), 2048);
    }

    #[test]
    fn generated_key_round_trips_through_the_seal() {
        let dir = tempfile::tempdir().unwrap();
        let kek = KeyEncryptionKey::load_or_create(&dir.path().join("kek")).unwrap();
        let zone = Name::from_labels([&b"example"[..]]).unwrap();
        let stored = generate_key(&kek, &zone, new_key_id(), KeyRole::Ksk, 13, 2048, 1000).unwrap();
        assert_eq!(stored.dnskey[..4], [1, 1, 3, 13]);
        assert_eq!(keymaster_keys::key_tag(&stored.dnskey), stored.key_tag);
        // A new key is hidden until the lifecycle engine introduces it.
        let signing = unseal_key(&kek, &zone, &stored).unwrap();
        assert!(!signing.signs_keys);
        assert!(!signing.signs_zone);
        assert!(!signing.published);

        let mut introduced = stored.clone();
        introduced.dnskey_state = RecordState::Omnipresent;
        introduced.krrsig_state = RecordState::Omnipresent;
        let signing = unseal_key(&kek, &zone, &introduced).unwrap();
        assert!(signing.signs_keys);
        assert!(!signing.signs_zone);
        assert!(signing.published);
        let other = Name::from_labels([&b"other"[..]]).unwrap();
        assert!(matches!(
            unseal_key(&kek, &other, &stored),
            Err(KeyringError::Unseal { .. })
        ));
    }
}
