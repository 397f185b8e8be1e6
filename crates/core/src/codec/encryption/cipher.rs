//! The value formats of the three encrypting providers: AES-GCM (the etcd key as
//! authenticated data), AES-CBC with PKCS#7 padding, and NaCl secretbox; sealing and
//! opening with one key. No I/O, no configuration.

use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, InvalidLength, KeyIvInit};
use rand::RngCore;

use super::CipherProvider;

/// Why sealing or opening a value with one key failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(super) enum CipherError {
    /// The key does not fit the cipher (the configuration's checks make this unlikely).
    #[error("{0}")]
    KeyLength(InvalidLength),
    /// The AEAD refused to seal.
    #[error("{0}")]
    Seal(aes_gcm::aead::Error),
    /// Too short for an AES-GCM value.
    #[error("the stored data ({0} bytes) is shorter than the 12-byte nonce and 16-byte tag")]
    GcmTooShort(usize),
    /// The AES-GCM tag does not match.
    #[error(
        "AES-GCM authentication failed (wrong key, or the value was written under another etcd key)"
    )]
    GcmAuthentication,
    /// Too short for an AES-CBC value.
    #[error("the stored data is shorter than the 16-byte IV")]
    CbcTooShort,
    /// Not whole AES blocks.
    #[error("the ciphertext ({0} bytes) is not a non-zero multiple of the 16-byte block size")]
    CbcBlocks(usize),
    /// The padding is wrong after decryption: most likely the wrong key.
    #[error("invalid PKCS#7 padding after AES-CBC decryption (wrong key?)")]
    CbcPadding,
    /// Too short for a secretbox value.
    #[error("the stored data is shorter than the 24-byte nonce and 16-byte tag")]
    SecretboxTooShort,
    /// The secretbox tag does not match.
    #[error("secretbox authentication failed (wrong key or corrupt data)")]
    SecretboxAuthentication,
}

type Aes192Gcm = aes_gcm::AesGcm<aes::Aes192, aes_gcm::aead::consts::U12>;

const GCM_NONCE: usize = 12;
const CBC_IV: usize = 16;
const SECRETBOX_NONCE: usize = 24;
const SECRETBOX_TAG: usize = 16;

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::thread_rng().fill_bytes(&mut b);
    b
}

fn gcm_seal<C: Aead + KeyInit>(
    key: &[u8],
    aad: &[u8],
    plain: &[u8],
) -> Result<Vec<u8>, CipherError> {
    let c = C::new_from_slice(key).map_err(CipherError::KeyLength)?;
    let nonce = random::<GCM_NONCE>();
    let ct = c
        .encrypt(
            GenericArray::from_slice(&nonce),
            Payload { msg: plain, aad },
        )
        .map_err(CipherError::Seal)?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    Ok(out)
}

fn gcm_open<C: Aead + KeyInit>(
    key: &[u8],
    aad: &[u8],
    data: &[u8],
) -> Result<Vec<u8>, CipherError> {
    if data.len() < GCM_NONCE + 16 {
        return Err(CipherError::GcmTooShort(data.len()));
    }
    let c = C::new_from_slice(key).map_err(CipherError::KeyLength)?;
    c.decrypt(
        GenericArray::from_slice(&data[..GCM_NONCE]),
        Payload {
            msg: &data[GCM_NONCE..],
            aad,
        },
    )
    .map_err(|_| CipherError::GcmAuthentication)
}

fn cbc_seal<C>(key: &[u8], plain: &[u8]) -> Result<Vec<u8>, CipherError>
where
    cbc::Encryptor<C>: KeyIvInit + BlockEncryptMut,
    C: cbc::cipher::BlockCipher + cbc::cipher::BlockEncryptMut,
{
    let iv = random::<CBC_IV>();
    let enc = cbc::Encryptor::<C>::new_from_slices(key, &iv).map_err(CipherError::KeyLength)?;
    let mut out = iv.to_vec();
    out.extend_from_slice(&enc.encrypt_padded_vec_mut::<Pkcs7>(plain));
    Ok(out)
}

fn cbc_open<C>(key: &[u8], data: &[u8]) -> Result<Vec<u8>, CipherError>
where
    cbc::Decryptor<C>: KeyIvInit + BlockDecryptMut,
    C: cbc::cipher::BlockCipher + cbc::cipher::BlockDecryptMut,
{
    if data.len() < CBC_IV {
        return Err(CipherError::CbcTooShort);
    }
    let body = &data[CBC_IV..];
    if body.is_empty() || !body.len().is_multiple_of(16) {
        return Err(CipherError::CbcBlocks(body.len()));
    }
    let dec = cbc::Decryptor::<C>::new_from_slices(key, &data[..CBC_IV])
        .map_err(CipherError::KeyLength)?;
    dec.decrypt_padded_vec_mut::<Pkcs7>(body)
        .map_err(|_| CipherError::CbcPadding)
}

/// Encrypt `plain` with one provider and key; returns the data after the key name.
pub(super) fn seal(
    cipher: CipherProvider,
    key: &[u8],
    etcd_key: &[u8],
    plain: &[u8],
) -> Result<Vec<u8>, CipherError> {
    match (cipher, key.len()) {
        (CipherProvider::AesGcm, 16) => gcm_seal::<aes_gcm::Aes128Gcm>(key, etcd_key, plain),
        (CipherProvider::AesGcm, 24) => gcm_seal::<Aes192Gcm>(key, etcd_key, plain),
        (CipherProvider::AesGcm, _) => gcm_seal::<aes_gcm::Aes256Gcm>(key, etcd_key, plain),
        (CipherProvider::AesCbc, 16) => cbc_seal::<aes::Aes128>(key, plain),
        (CipherProvider::AesCbc, 24) => cbc_seal::<aes::Aes192>(key, plain),
        (CipherProvider::AesCbc, _) => cbc_seal::<aes::Aes256>(key, plain),
        (CipherProvider::Secretbox, _) => {
            let c = crypto_secretbox::XSalsa20Poly1305::new_from_slice(key)
                .map_err(CipherError::KeyLength)?;
            let nonce = random::<SECRETBOX_NONCE>();
            let ct = c
                .encrypt(GenericArray::from_slice(&nonce), plain)
                .map_err(CipherError::Seal)?;
            let mut out = nonce.to_vec();
            out.extend_from_slice(&ct);
            Ok(out)
        }
    }
}

/// Decrypt the data after the key name with one provider and key.
pub(super) fn open(
    cipher: CipherProvider,
    key: &[u8],
    etcd_key: &[u8],
    data: &[u8],
) -> Result<Vec<u8>, CipherError> {
    match (cipher, key.len()) {
        (CipherProvider::AesGcm, 16) => gcm_open::<aes_gcm::Aes128Gcm>(key, etcd_key, data),
        (CipherProvider::AesGcm, 24) => gcm_open::<Aes192Gcm>(key, etcd_key, data),
        (CipherProvider::AesGcm, _) => gcm_open::<aes_gcm::Aes256Gcm>(key, etcd_key, data),
        (CipherProvider::AesCbc, 16) => cbc_open::<aes::Aes128>(key, data),
        (CipherProvider::AesCbc, 24) => cbc_open::<aes::Aes192>(key, data),
        (CipherProvider::AesCbc, _) => cbc_open::<aes::Aes256>(key, data),
        (CipherProvider::Secretbox, _) => {
            if data.len() < SECRETBOX_NONCE + SECRETBOX_TAG {
                return Err(CipherError::SecretboxTooShort);
            }
            let c = crypto_secretbox::XSalsa20Poly1305::new_from_slice(key)
                .map_err(CipherError::KeyLength)?;
            c.decrypt(
                GenericArray::from_slice(&data[..SECRETBOX_NONCE]),
                &data[SECRETBOX_NONCE..],
            )
            .map_err(|_| CipherError::SecretboxAuthentication)
        }
    }
}
