//! C2SP `signed-note` with Ed25519 signatures (signature type 0x01),
//! compatible with `golang.org/x/mod/sumdb/note`.
//!
//! See <https://github.com/C2SP/C2SP/blob/main/signed-note.md>.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// Signature type identifier of Ed25519 in the signed-note specification.
pub const ALG_ED25519: u8 = 0x01;
/// Signature lines beyond this many make a note malformed; the
/// specification requires accepting at least 16 and Go accepts 100.
pub const MAX_SIGNATURES: usize = 100;
/// Starts every signature line: em dash, space.
const SIG_PREFIX: &str = "\u{2014} ";
/// Starts a private key in the `sumdb/note` text format.
const PRIVATE_KEY_PREFIX: &str = "PRIVATE+KEY+";

/// Why a key or note was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// A key name is empty or contains whitespace or `+`.
    #[error("invalid key name {0:?}: it must be non-empty, without spaces or '+'")]
    InvalidName(String),
    /// The text to sign is not a valid note text.
    #[error("invalid note text: {0}")]
    InvalidText(&'static str),
    /// A verifier key is not `<name>+<8 hex key id>+<base64 key>`.
    #[error("malformed verifier key: {0}")]
    InvalidVerifierKey(&'static str),
    /// A private key is not `PRIVATE+KEY+<name>+<8 hex key id>+<base64 key>`.
    /// The key text itself is never included in the message.
    #[error("malformed private key: {0}")]
    InvalidPrivateKey(&'static str),
    /// The key is not an Ed25519 key.
    #[error("unsupported signature algorithm 0x{0:02x}, only Ed25519 (0x01) is supported")]
    UnsupportedAlgorithm(u8),
    /// The key id in a key's text does not match its name and public key.
    #[error("key id does not match the key name and public key")]
    KeyIdMismatch,
    /// The signed note does not follow the signed-note format.
    #[error("malformed signed note: {0}")]
    Malformed(&'static str),
    /// The note carries more than [`MAX_SIGNATURES`] signature lines.
    #[error("signed note has more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    /// A signature line by the trusted key does not verify.
    #[error("invalid signature by key {key}")]
    InvalidSignature {
        /// `<name>+<key id>` of the trusted key.
        key: String,
    },
    /// No signature line is by the trusted key.
    #[error("signed note has no signature by key {key}")]
    NoSignature {
        /// `<name>+<key id>` of the trusted key.
        key: String,
    },
}

/// Key names must be non-empty and free of Unicode spaces and `+`.
fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.contains('+') || name.contains(char::is_whitespace) {
        return Err(NoteError::InvalidName(name.to_owned()));
    }
    Ok(())
}

/// `SHA-256(name || "\n" || 0x01 || public key)[:4]`.
fn key_id(name: &str, key: &VerifyingKey) -> [u8; 4] {
    let digest = Sha256::new()
        .chain_update(name)
        .chain_update([b'\n', ALG_ED25519])
        .chain_update(key.as_bytes())
        .finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

fn hex(id: [u8; 4]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses the 8-hex-digit key id of a key text.
fn parse_key_id(text: &str) -> Option<[u8; 4]> {
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(text, 16).ok().map(u32::to_be_bytes)
}

/// Splits `<name>+<key id>+<base64(0x01 || key)>`, checking the name, the
/// id syntax and the algorithm; returns the 32 key bytes. Syntax errors are
/// reported through `invalid`.
fn split_key_text(
    text: &str,
    invalid: fn(&'static str) -> NoteError,
) -> Result<(&str, [u8; 4], [u8; 32]), NoteError> {
    let mut fields = text.splitn(3, '+');
    let (Some(name), Some(id), Some(key64)) = (fields.next(), fields.next(), fields.next()) else {
        return Err(invalid("expected three '+'-separated fields"));
    };
    check_name(name).map_err(|_| invalid("invalid key name"))?;
    let id = parse_key_id(id).ok_or_else(|| invalid("key id is not 8 hex digits"))?;
    let key = STANDARD
        .decode(key64)
        .map_err(|_| invalid("key is not valid base64"))?;
    match key.split_first() {
        Some((&ALG_ED25519, rest)) => rest
            .try_into()
            .map(|bytes| (name, id, bytes))
            .map_err(|_| invalid("Ed25519 key is not 32 bytes")),
        Some((&alg, _)) => Err(NoteError::UnsupportedAlgorithm(alg)),
        None => Err(invalid("key is empty")),
    }
}

/// Signs notes with an Ed25519 key under a key name.
pub struct NoteSigner {
    name: String,
    key_id: [u8; 4],
    key: SigningKey,
}

impl fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the private key.
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("key_id", &hex(self.key_id))
            .finish_non_exhaustive()
    }
}

impl NoteSigner {
    /// Creates a signer; `name` must be non-empty, without whitespace or `+`.
    pub fn new(name: &str, key: SigningKey) -> Result<Self, NoteError> {
        check_name(name)?;
        let key_id = key_id(name, &key.verifying_key());
        Ok(Self {
            name: name.to_owned(),
            key_id,
            key,
        })
    }

    /// Loads a signer from the `sumdb/note` private key text
    /// `PRIVATE+KEY+<name>+<8 hex key id>+<base64(0x01 || 32-byte seed)>`.
    pub fn parse_private_key(text: &str) -> Result<Self, NoteError> {
        let rest = text
            .strip_prefix(PRIVATE_KEY_PREFIX)
            .ok_or(NoteError::InvalidPrivateKey("missing PRIVATE+KEY+ prefix"))?;
        let (name, id, seed) = split_key_text(rest, NoteError::InvalidPrivateKey)?;
        let signer = Self::new(name, SigningKey::from_bytes(&seed))?;
        if signer.key_id != id {
            return Err(NoteError::KeyIdMismatch);
        }
        Ok(signer)
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id: the first four bytes of the key hash.
    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    /// The public half of the key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The verifier key text `<name>+<8 hex key id>+<base64(0x01 || key)>`
    /// to publish for [`NoteVerifier::parse`].
    pub fn verifier_key(&self) -> String {
        let mut key = vec![ALG_ED25519];
        key.extend_from_slice(self.verifying_key().as_bytes());
        format!(
            "{}+{}+{}",
            self.name,
            hex(self.key_id),
            STANDARD.encode(key)
        )
    }

    /// Signs `text`, which must be non-empty, end in a newline and contain
    /// no other control characters; returns the signed note: `text`, a
    /// blank line and one signature line.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        if text.is_empty() {
            return Err(NoteError::InvalidText("it is empty"));
        }
        if !text.ends_with('\n') {
            return Err(NoteError::InvalidText("it does not end in a newline"));
        }
        if has_forbidden_control(text) {
            return Err(NoteError::InvalidText("it contains control characters"));
        }
        let signature = self.key.sign(text.as_bytes());
        let mut blob = self.key_id.to_vec();
        blob.extend_from_slice(&signature.to_bytes());
        Ok(format!(
            "{text}\n{SIG_PREFIX}{} {}\n",
            self.name,
            STANDARD.encode(blob)
        ))
    }
}

/// Verifies notes signed by one trusted Ed25519 key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key_id: [u8; 4],
    key: VerifyingKey,
}

impl NoteVerifier {
    /// Parses a verifier key `<name>+<8 hex key id>+<base64(0x01 || key)>`,
    /// checking that the key id matches the name and key.
    pub fn parse(verifier_key: &str) -> Result<Self, NoteError> {
        let (name, id, bytes) = split_key_text(verifier_key, NoteError::InvalidVerifierKey)?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| NoteError::InvalidVerifierKey("not a valid Ed25519 public key"))?;
        if key_id(name, &key) != id {
            return Err(NoteError::KeyIdMismatch);
        }
        Ok(Self {
            name: name.to_owned(),
            key_id: id,
            key,
        })
    }

    /// Creates a verifier for `key` under `name`.
    pub fn new(name: &str, key: VerifyingKey) -> Result<Self, NoteError> {
        check_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            key_id: key_id(name, &key),
            key,
        })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id: the first four bytes of the key hash.
    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    /// Verifies a signed note; returns the note text (without signatures)
    /// when a valid signature by this key is present. Signatures by other
    /// keys are ignored; a line with this key's name and id whose signature
    /// does not verify is an error.
    pub fn open<'a>(&self, note: &'a str) -> Result<&'a str, NoteError> {
        let (text, signatures) = split_note(note)?;
        let mut verified = false;
        for (count, line) in signatures.lines().enumerate() {
            if count == MAX_SIGNATURES {
                return Err(NoteError::TooManySignatures);
            }
            let (name, id, signature) = parse_signature_line(line)?;
            // Only the name and id together identify a key: lines matching
            // just one of them are other keys and must be ignored.
            if name == self.name && id == self.key_id {
                self.check(text, &signature)?;
                verified = true;
            }
        }
        if !verified {
            return Err(NoteError::NoSignature { key: self.label() });
        }
        Ok(text)
    }

    fn check(&self, text: &str, signature: &[u8]) -> Result<(), NoteError> {
        let invalid = || NoteError::InvalidSignature { key: self.label() };
        let signature = Signature::from_slice(signature).map_err(|_| invalid())?;
        self.key
            .verify_strict(text.as_bytes(), &signature)
            .map_err(|_| invalid())
    }

    fn label(&self) -> String {
        format!("{}+{}", self.name, hex(self.key_id))
    }
}

/// ASCII control characters (below U+0020) other than newline are
/// forbidden in notes; U+007F is allowed, as in the specification and Go.
fn has_forbidden_control(text: &str) -> bool {
    text.chars().any(|c| c < ' ' && c != '\n')
}

/// Splits a signed note at its last blank line into the text (with its
/// final newline) and the signature block (ending in a newline).
fn split_note(note: &str) -> Result<(&str, &str), NoteError> {
    if has_forbidden_control(note) {
        return Err(NoteError::Malformed("contains control characters"));
    }
    let split = note
        .rfind("\n\n")
        .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
    let (text, signatures) = (&note[..=split], &note[split + 2..]);
    if signatures.is_empty() {
        return Err(NoteError::Malformed("no signature lines"));
    }
    if !signatures.ends_with('\n') {
        return Err(NoteError::Malformed("signatures do not end in a newline"));
    }
    Ok((text, signatures))
}

/// Parses `— <name> <base64(key id || signature)>`.
fn parse_signature_line(line: &str) -> Result<(&str, [u8; 4], Vec<u8>), NoteError> {
    let rest = line.strip_prefix(SIG_PREFIX).ok_or(NoteError::Malformed(
        "signature line does not start with an em dash",
    ))?;
    let (name, sig64) = rest
        .split_once(' ')
        .ok_or(NoteError::Malformed("signature line has no signature"))?;
    check_name(name).map_err(|_| NoteError::Malformed("invalid key name in signature line"))?;
    let blob = STANDARD
        .decode(sig64)
        .map_err(|_| NoteError::Malformed("signature is not valid base64"))?;
    match blob.split_first_chunk::<4>() {
        Some((id, signature)) if !signature.is_empty() => Ok((name, *id, signature.to_vec())),
        _ => Err(NoteError::Malformed("signature is too short")),
    }
}
