//! C2SP `tlog-checkpoint` note bodies: origin, tree size and root hash.
//!
//! See <https://github.com/C2SP/C2SP/blob/main/tlog-checkpoint.md>.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::Hash;
use crate::note::{NoteError, NoteVerifier};

/// Why a checkpoint was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The text does not end in a newline.
    #[error("checkpoint text must end in a newline")]
    MissingFinalNewline,
    /// Fewer than the three mandatory lines.
    #[error("checkpoint needs origin, size and root lines, found {0} line(s)")]
    TooFewLines(usize),
    /// The origin line is empty.
    #[error("checkpoint origin is empty")]
    EmptyOrigin,
    /// A line holds a character that cannot appear in a note line.
    #[error("checkpoint line {line} contains a newline or control character")]
    ControlCharacter {
        /// One-based line number (1 = origin).
        line: usize,
    },
    /// The size line is not a canonical decimal `u64`.
    #[error("checkpoint size {0:?} is not a decimal number without leading zeros")]
    InvalidSize(String),
    /// The root line is not standard, padded base64.
    #[error("checkpoint root hash is not valid base64")]
    InvalidRootEncoding,
    /// The root line does not decode to 32 bytes.
    #[error("checkpoint root hash has {0} bytes, expected 32")]
    InvalidRootLength(usize),
    /// An extension line is empty.
    #[error("checkpoint extension line {line} is empty")]
    EmptyExtension {
        /// One-based line number in the note text.
        line: usize,
    },
    /// The checkpoint is for a different log than expected.
    #[error("checkpoint origin {found:?} does not match expected {expected:?}")]
    OriginMismatch {
        /// The origin the caller asked for.
        expected: String,
        /// The origin in the checkpoint.
        found: String,
    },
    /// The signed note around the checkpoint did not verify.
    #[error("checkpoint signature: {0}")]
    Note(#[from] NoteError),
}

/// A transparency log's signed statement of its size and root hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Unique identity of the log, e.g. `schakel.example/audit`.
    pub origin: String,
    /// Number of leaves in the tree.
    pub size: u64,
    /// RFC 9162 root hash of the tree at `size`.
    pub root: Hash,
    /// Optional opaque extension lines (each non-empty), without newlines.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// Renders the note text: origin, size, base64 root and any extension
    /// lines, each ending in a newline.
    ///
    /// The output parses back only if [`validate`](Self::validate) passes;
    /// call it before signing text built from untrusted fields.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        );
        for extension in &self.extensions {
            text.push_str(extension);
            text.push('\n');
        }
        text
    }

    /// Checks that [`to_text`](Self::to_text) would produce a well-formed
    /// checkpoint: non-empty origin and extensions, no control characters.
    pub fn validate(&self) -> Result<(), CheckpointError> {
        check_origin(&self.origin)?;
        for (i, extension) in self.extensions.iter().enumerate() {
            check_extension(extension, i + 4)?;
        }
        Ok(())
    }

    /// Parses checkpoint note text (without signatures).
    pub fn parse(text: &str) -> Result<Checkpoint, CheckpointError> {
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::MissingFinalNewline)?;
        let lines: Vec<&str> = body.split('\n').collect();
        let [origin, size, root, extensions @ ..] = lines.as_slice() else {
            return Err(CheckpointError::TooFewLines(lines.len()));
        };
        check_origin(origin)?;
        let size = parse_size(size)?;
        let root = parse_root(root)?;
        for (i, extension) in extensions.iter().enumerate() {
            check_extension(extension, i + 4)?;
        }
        Ok(Checkpoint {
            origin: (*origin).to_owned(),
            size,
            root,
            extensions: extensions.iter().map(|e| (*e).to_owned()).collect(),
        })
    }
}

/// Verifies a signed checkpoint note with `verifier` and parses it; when
/// `origin` is given, the checkpoint must be for that log.
pub fn open_checkpoint(
    note: &str,
    verifier: &NoteVerifier,
    origin: Option<&str>,
) -> Result<Checkpoint, CheckpointError> {
    let text = verifier.open(note)?;
    let checkpoint = Checkpoint::parse(text)?;
    if let Some(expected) = origin
        && checkpoint.origin != expected
    {
        return Err(CheckpointError::OriginMismatch {
            expected: expected.to_owned(),
            found: checkpoint.origin,
        });
    }
    Ok(checkpoint)
}

/// Control characters below U+0020 (newline included) cannot appear in a
/// checkpoint line, nor anywhere in a signed note.
fn has_control(line: &str) -> bool {
    line.chars().any(|c| c < ' ')
}

fn check_origin(origin: &str) -> Result<(), CheckpointError> {
    if origin.is_empty() {
        return Err(CheckpointError::EmptyOrigin);
    }
    if has_control(origin) {
        return Err(CheckpointError::ControlCharacter { line: 1 });
    }
    Ok(())
}

fn check_extension(extension: &str, line: usize) -> Result<(), CheckpointError> {
    if extension.is_empty() {
        return Err(CheckpointError::EmptyExtension { line });
    }
    if has_control(extension) {
        return Err(CheckpointError::ControlCharacter { line });
    }
    Ok(())
}

fn parse_size(line: &str) -> Result<u64, CheckpointError> {
    let invalid = || CheckpointError::InvalidSize(line.to_owned());
    let canonical = !line.is_empty()
        && line.bytes().all(|b| b.is_ascii_digit())
        && (line == "0" || !line.starts_with('0'));
    if !canonical {
        return Err(invalid());
    }
    line.parse().map_err(|_| invalid())
}

fn parse_root(line: &str) -> Result<Hash, CheckpointError> {
    let bytes = STANDARD
        .decode(line)
        .map_err(|_| CheckpointError::InvalidRootEncoding)?;
    let len = bytes.len();
    bytes
        .try_into()
        .map_err(|_| CheckpointError::InvalidRootLength(len))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const ROOT_B64: &str = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";

    fn example() -> Checkpoint {
        Checkpoint {
            origin: "example.com/behind-the-sofa".to_owned(),
            size: 20852163,
            root: STANDARD.decode(ROOT_B64).unwrap().try_into().unwrap(),
            extensions: vec![],
        }
    }

    #[test]
    fn spec_example_round_trips() {
        // The body of the example in the C2SP tlog-checkpoint specification.
        let text = format!("example.com/behind-the-sofa\n20852163\n{ROOT_B64}\n");
        let checkpoint = Checkpoint::parse(&text).unwrap();
        assert_eq!(checkpoint, example());
        assert_eq!(checkpoint.to_text(), text);
    }

    #[test]
    fn extensions_round_trip() {
        let mut checkpoint = example();
        checkpoint.extensions = vec!["ext one".to_owned(), "— two".to_owned()];
        checkpoint.validate().unwrap();
        assert_eq!(
            Checkpoint::parse(&checkpoint.to_text()).unwrap(),
            checkpoint
        );
    }

    #[test]
    fn validate_rejects_unrenderable_fields() {
        let mut checkpoint = example();
        checkpoint.origin = "two\nlines".to_owned();
        assert_eq!(
            checkpoint.validate(),
            Err(CheckpointError::ControlCharacter { line: 1 })
        );
        let mut checkpoint = example();
        checkpoint.extensions = vec!["a".to_owned(), String::new()];
        assert_eq!(
            checkpoint.validate(),
            Err(CheckpointError::EmptyExtension { line: 5 })
        );
    }

    #[test]
    fn size_must_be_canonical_decimal() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
        for bad in [
            "",
            "00",
            "01",
            "+1",
            "-1",
            " 1",
            "1 ",
            "0x10",
            "1e3",
            "18446744073709551616",
            "١",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} accepted");
        }
    }
}
