//! Checkpoint text: round trips, rejection of malformed bodies, and signed
//! checkpoints opened with `open_checkpoint`.

use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use schakel_tlog::{
    Checkpoint, CheckpointError, NoteError, NoteSigner, NoteVerifier, empty_root, open_checkpoint,
};

const ORIGIN: &str = "schakel.example/audit";
/// base64 of 32 zero bytes.
const ZERO_ROOT: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

fn parse(text: &str) -> Result<Checkpoint, CheckpointError> {
    Checkpoint::parse(text)
}

#[test]
fn round_trip_with_and_without_extensions() {
    let mut checkpoint = Checkpoint {
        origin: ORIGIN.to_owned(),
        size: 0,
        root: empty_root(),
        extensions: vec![],
    };
    assert_eq!(
        checkpoint.to_text(),
        "schakel.example/audit\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
    );
    assert_eq!(parse(&checkpoint.to_text()).unwrap(), checkpoint);
    checkpoint.size = u64::MAX;
    checkpoint.extensions = vec!["x".to_owned(), "y z".to_owned()];
    assert_eq!(parse(&checkpoint.to_text()).unwrap(), checkpoint);
}

#[test]
fn malformed_texts_are_rejected() {
    use CheckpointError as E;
    let cases: [(String, CheckpointError); 14] = [
        (format!("\n7\n{ZERO_ROOT}\n"), E::EmptyOrigin),
        (format!("7\n{ZERO_ROOT}\n"), E::TooFewLines(2)),
        (String::new(), E::MissingFinalNewline),
        ("\n".to_owned(), E::TooFewLines(1)),
        (format!("{ORIGIN}\n7\n{ZERO_ROOT}"), E::MissingFinalNewline),
        (
            format!("{ORIGIN}\n07\n{ZERO_ROOT}\n"),
            E::InvalidSize("07".to_owned()),
        ),
        (
            format!("{ORIGIN}\n00\n{ZERO_ROOT}\n"),
            E::InvalidSize("00".to_owned()),
        ),
        (
            format!("{ORIGIN}\nseven\n{ZERO_ROOT}\n"),
            E::InvalidSize("seven".to_owned()),
        ),
        (
            format!("{ORIGIN}\n-7\n{ZERO_ROOT}\n"),
            E::InvalidSize("-7".to_owned()),
        ),
        (
            format!("{ORIGIN}\n\n{ZERO_ROOT}\n"),
            E::InvalidSize(String::new()),
        ),
        (
            format!("{ORIGIN}\n7\nnot base64!\n"),
            E::InvalidRootEncoding,
        ),
        (format!("{ORIGIN}\n7\nAAAA\n"), E::InvalidRootLength(3)),
        (
            format!("{ORIGIN}\n7\n{ZERO_ROOT}\next\n\nmore\n"),
            E::EmptyExtension { line: 5 },
        ),
        (
            format!("{ORIGIN}\n7\n{ZERO_ROOT}\n\n"),
            E::EmptyExtension { line: 4 },
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(parse(&text), Err(expected), "{text:?}");
    }
    // Unpadded base64 and a 33-byte root are not accepted either.
    assert_eq!(
        parse(&format!(
            "{ORIGIN}\n7\n{}\n",
            ZERO_ROOT.trim_end_matches('=')
        )),
        Err(E::InvalidRootEncoding)
    );
    assert!(matches!(
        parse(&format!("{ORIGIN}\n7\n{ZERO_ROOT}AAAA\n")),
        Err(E::InvalidRootEncoding | E::InvalidRootLength(_))
    ));
    assert_eq!(
        parse(&format!("{ORIGIN}\n18446744073709551616\n{ZERO_ROOT}\n")),
        Err(E::InvalidSize("18446744073709551616".to_owned()))
    );
}

#[test]
fn open_checkpoint_verifies_signature_and_origin() {
    let signer = NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[5; 32])).unwrap();
    let verifier = NoteVerifier::parse(&signer.verifier_key()).unwrap();
    let checkpoint = Checkpoint {
        origin: ORIGIN.to_owned(),
        size: 42,
        root: [3; 32],
        extensions: vec![],
    };
    let note = signer.sign(&checkpoint.to_text()).unwrap();

    assert_eq!(open_checkpoint(&note, &verifier, None).unwrap(), checkpoint);
    assert_eq!(
        open_checkpoint(&note, &verifier, Some(ORIGIN)).unwrap(),
        checkpoint
    );
    assert_eq!(
        open_checkpoint(&note, &verifier, Some("other.example/log")),
        Err(CheckpointError::OriginMismatch {
            expected: "other.example/log".to_owned(),
            found: ORIGIN.to_owned(),
        })
    );
    let tampered = note.replacen("\n42\n", "\n43\n", 1);
    assert!(matches!(
        open_checkpoint(&tampered, &verifier, None),
        Err(CheckpointError::Note(NoteError::InvalidSignature { .. }))
    ));
    // A validly signed note that is not a checkpoint.
    let not_a_checkpoint = signer.sign("hello\n").unwrap();
    assert_eq!(
        open_checkpoint(&not_a_checkpoint, &verifier, None),
        Err(CheckpointError::TooFewLines(1))
    );
}

proptest! {
    #[test]
    fn valid_checkpoints_round_trip(
        origin in "[^\\x00-\\x1f]{1,40}",
        size: u64,
        root: [u8; 32],
        extensions in proptest::collection::vec("[^\\x00-\\x1f]{1,20}", 0..4),
    ) {
        let checkpoint = Checkpoint { origin, size, root, extensions };
        prop_assert_eq!(checkpoint.validate(), Ok(()));
        prop_assert_eq!(parse(&checkpoint.to_text()), Ok(checkpoint));
    }

    #[test]
    fn parse_never_panics(text in any::<String>()) {
        if let Ok(checkpoint) = parse(&text) {
            prop_assert_eq!(checkpoint.to_text(), text);
        }
    }
}
