//! Signed notes: round trips, rejection of tampering, and interoperability
//! with the Go reference implementation (golang.org/x/mod/sumdb/note).

use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use schakel_tlog::note::MAX_SIGNATURES;
use schakel_tlog::{NoteError, NoteSigner, NoteVerifier};

// Vectors copied from golang.org/x/mod sumdb/note/note_test.go
// (TestNewVerifier, TestNewSigner, TestSign, TestOpen).
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n";
const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

fn peter() -> NoteVerifier {
    NoteVerifier::parse(PETER_VKEY).unwrap()
}

fn signer(name: &str, seed: u8) -> NoteSigner {
    NoteSigner::new(name, SigningKey::from_bytes(&[seed; 32])).unwrap()
}

#[test]
fn go_verifier_key_parses() {
    let verifier = peter();
    assert_eq!(verifier.name(), "PeterNeumann");
    assert_eq!(verifier.key_id(), [0xc7, 0x4f, 0x20, 0xa3]);
    assert_eq!(
        NoteVerifier::parse(ENOCH_VKEY).unwrap().key_id(),
        [0xaf, 0x0c, 0xfe, 0x78]
    );
}

#[test]
fn go_verifier_key_manglings_are_rejected() {
    // Same manglings as Go's TestNewVerifier: every proper substring and
    // every single-byte increment.
    let bytes = PETER_VKEY.as_bytes();
    for i in 0..=bytes.len() {
        for j in i + 1..=bytes.len() {
            if (i, j) != (0, bytes.len()) {
                let key = std::str::from_utf8(&bytes[i..j]).unwrap();
                assert!(NoteVerifier::parse(key).is_err(), "accepted {key:?}");
            }
        }
    }
    for i in 0..bytes.len() {
        let mut mangled = bytes.to_vec();
        mangled[i] += 1;
        let key = String::from_utf8(mangled).unwrap();
        assert!(NoteVerifier::parse(&key).is_err(), "accepted {key:?}");
    }
    // Wrong key length and unknown algorithm, each with a matching key hash.
    assert!(matches!(
        NoteVerifier::parse(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
        ),
        Err(NoteError::InvalidVerifierKey(_))
    ));
    assert_eq!(
        NoteVerifier::parse("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
            .unwrap_err(),
        NoteError::UnsupportedAlgorithm(0x65)
    );
}

#[test]
fn go_private_key_signs_identically() {
    let signer = NoteSigner::parse_private_key(PETER_SKEY).unwrap();
    assert_eq!(signer.name(), "PeterNeumann");
    assert_eq!(signer.verifier_key(), PETER_VKEY);
    // Ed25519 is deterministic: the same key must give Go's exact note.
    assert_eq!(signer.sign(TEXT).unwrap(), format!("{TEXT}\n{PETER_SIG}"));

    let bytes = PETER_SKEY.as_bytes();
    for i in 0..bytes.len() {
        let mut mangled = bytes.to_vec();
        mangled[i] += 1;
        let key = String::from_utf8(mangled).unwrap();
        assert!(
            NoteSigner::parse_private_key(&key).is_err(),
            "accepted {key:?}"
        );
    }
    let error = NoteSigner::parse_private_key(&PETER_SKEY[..PETER_SKEY.len() - 1]).unwrap_err();
    assert!(
        !error.to_string().contains("AYEKFALV"),
        "error leaks the key: {error}"
    );
}

#[test]
fn go_signed_note_opens() {
    let note = format!("{TEXT}\n{PETER_SIG}");
    assert_eq!(peter().open(&note), Ok(TEXT));
    // Another signer's line is ignored, whatever the order.
    for note in [
        format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}"),
        format!("{TEXT}\n{ENOCH_SIG}{PETER_SIG}"),
    ] {
        assert_eq!(peter().open(&note), Ok(TEXT));
        let enoch = NoteVerifier::parse(ENOCH_VKEY).unwrap();
        assert_eq!(enoch.open(&note), Ok(TEXT));
    }
    // Go's "duplicated verified and unverified signatures", including a
    // corrupted line by the untrusted key.
    let corrupt_enoch = format!("{}ABCD{}", &ENOCH_SIG[..60], &ENOCH_SIG[60..]);
    let note = format!("{TEXT}\n{PETER_SIG}{PETER_SIG}{ENOCH_SIG}{ENOCH_SIG}{corrupt_enoch}");
    assert_eq!(peter().open(&note), Ok(TEXT));
}

#[test]
fn go_bad_notes_are_rejected() {
    let corrupt = format!("{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
    assert!(matches!(
        peter().open(&format!("{TEXT}\n{corrupt}")),
        Err(NoteError::InvalidSignature { .. })
    ));
    let malformed = [
        TEXT.to_owned(),
        format!("{TEXT}\n"),
        format!("{TEXT}\n{}", &PETER_SIG[..PETER_SIG.len() - 1]),
        format!("\x01{TEXT}\n{PETER_SIG}"),
        format!(
            "{TEXT}\n\u{2014} Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
        ),
        format!("{TEXT}\n{PETER_SIG}Unexpected line.\n"),
    ];
    for note in &malformed {
        assert!(
            matches!(peter().open(note), Err(NoteError::Malformed(_))),
            "{note:?}"
        );
    }
    let too_many = format!("{TEXT}\n{}", PETER_SIG.repeat(MAX_SIGNATURES + 1));
    assert_eq!(peter().open(&too_many), Err(NoteError::TooManySignatures));
    // A different name, or a different key id, is a different key: ignored.
    for unknown in [
        PETER_SIG.replace("PeterNeumann", "CarmenSandiego"),
        PETER_SIG.replace("x08g", "xxxx"),
        ENOCH_SIG.to_owned(),
    ] {
        assert!(matches!(
            peter().open(&format!("{TEXT}\n{unknown}")),
            Err(NoteError::NoSignature { .. })
        ));
    }
}

#[test]
fn sign_open_round_trip() {
    let signer = signer("schakel.example/audit", 7);
    let verifier = NoteVerifier::parse(&signer.verifier_key()).unwrap();
    assert_eq!(verifier.name(), signer.name());
    assert_eq!(verifier.key_id(), signer.key_id());
    let text = "schakel.example/audit\n3\n\nwith an empty line\n";
    assert_eq!(verifier.open(&signer.sign(text).unwrap()), Ok(text));

    let random = NoteSigner::new("r", SigningKey::generate(&mut rand::rngs::OsRng)).unwrap();
    let verifier = NoteVerifier::parse(&random.verifier_key()).unwrap();
    assert_eq!(verifier.open(&random.sign(text).unwrap()), Ok(text));
}

#[test]
fn tampering_and_wrong_keys_are_rejected() {
    let signer = signer("log", 1);
    let verifier = NoteVerifier::parse(&signer.verifier_key()).unwrap();
    let note = signer.sign("log\n1\nroot\n").unwrap();

    let tampered_text = note.replacen("log\n1", "log\n2", 1);
    assert!(matches!(
        verifier.open(&tampered_text),
        Err(NoteError::InvalidSignature { .. })
    ));

    let sig_start = note.rfind(' ').unwrap() + 1;
    for position in sig_start..note.len() - 1 {
        let mut bytes = note.clone().into_bytes();
        bytes[position] = if bytes[position] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        if tampered != note {
            assert!(
                verifier.open(&tampered).is_err(),
                "accepted change at {position}"
            );
        }
    }

    let other = NoteVerifier::parse(&self::signer("other", 2).verifier_key()).unwrap();
    assert!(matches!(
        other.open(&note),
        Err(NoteError::NoSignature { .. })
    ));
    // Same name, different key: a different key id, so the line is not ours.
    let impostor = self::signer("log", 3);
    assert_ne!(impostor.key_id(), signer.key_id());
    let forged = impostor.sign("log\n1\nroot\n").unwrap();
    assert!(matches!(
        verifier.open(&forged),
        Err(NoteError::NoSignature { .. })
    ));
    // Both lines present: ours still verifies, the impostor is ignored.
    let both = format!("{note}{}", &forged[forged.rfind('\u{2014}').unwrap()..]);
    assert_eq!(verifier.open(&both), Ok("log\n1\nroot\n"));
}

#[test]
fn invalid_names_and_texts_are_rejected() {
    for name in ["", "a b", "a+b", "tab\there", "nbsp\u{a0}"] {
        let result = NoteSigner::new(name, SigningKey::from_bytes(&[0; 32]));
        assert!(matches!(result, Err(NoteError::InvalidName(_))), "{name:?}");
    }
    let signer = signer("log", 1);
    for text in ["", "no newline", "bell\x07\n", "cr\r\n"] {
        assert!(
            matches!(signer.sign(text), Err(NoteError::InvalidText(_))),
            "{text:?}"
        );
    }
    // Debug output never shows the private key.
    assert!(!format!("{signer:?}").contains("secret"));
}

proptest! {
    #[test]
    fn open_never_panics(note in any::<String>()) {
        let _ = peter().open(&note);
        let _ = peter().open(&format!("{note}\n\n{PETER_SIG}"));
        let _ = NoteVerifier::parse(&note);
        let _ = NoteSigner::parse_private_key(&note);
    }

    #[test]
    fn any_valid_text_round_trips(
        lines in proptest::collection::vec("[^\\x00-\\x1f]*", 1..6),
    ) {
        let text = lines.join("\n") + "\n";
        let signer = signer("prop", 9);
        let verifier = NoteVerifier::parse(&signer.verifier_key()).unwrap();
        let note = signer.sign(&text).unwrap();
        prop_assert_eq!(verifier.open(&note), Ok(text.as_str()));
    }
}
