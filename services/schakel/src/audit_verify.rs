//! `schakel audit verify`: the whole log against a pinned verifier key,
//! consistent with the checkpoint verified before (kept per log) or given.

use std::path::PathBuf;

use anyhow::Context;
use schakel_proto::v1 as pb;
use schakel_tlog::NoteVerifier;

/// What `audit verify` trusts: the pinned key (or, explicitly, the
/// server's), and where it keeps the last checkpoint it verified.
pub struct Pinned {
    pub key: Option<String>,
    pub trust_server_key: bool,
    pub state_dir: Option<PathBuf>,
}

impl Pinned {
    /// The file keeping the last verified checkpoint of the log with this
    /// origin and key (None: no state directory can be found).
    fn state_file(&self, origin: &str, key: &str) -> Option<PathBuf> {
        use sha2::Digest;
        let dir = self.state_dir.clone().or_else(|| {
            let xdg = std::env::var_os("XDG_STATE_HOME").map(PathBuf::from);
            let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state"));
            xdg.or(home).map(|d| d.join("schakel"))
        })?;
        let digest = sha2::Sha256::digest(format!("{origin}\n{key}").as_bytes());
        let name: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Some(dir.join(format!("audit-checkpoint-{name}.txt")))
    }
}

pub async fn verify(
    audit: &mut crate::connect::Audit,
    pinned: Pinned,
    origin: Option<String>,
    since: Option<PathBuf>,
    save: Option<PathBuf>,
    quiet: bool,
) -> anyhow::Result<()> {
    let info = audit
        .get_log_info(pb::GetLogInfoRequest {})
        .await?
        .into_inner();
    let key = match (&pinned.key, pinned.trust_server_key) {
        (Some(key), _) => key.clone(),
        (None, true) => {
            eprintln!(
                "warning: trusting the server's key {} (--trust-server-key): this proves only the log's internal consistency",
                info.verifier_key
            );
            info.verifier_key.clone()
        }
        (None, false) => anyhow::bail!(
            "no verifier key pinned: give --verifier-key (or SCHAKEL_AUDIT_VERIFIER_KEY) from a source other than this server, or --trust-server-key for a first look"
        ),
    };
    let verifier = NoteVerifier::parse(&key).context("--verifier-key")?;
    let origin = origin.unwrap_or(info.origin);
    let state = pinned.state_file(&origin, &key);
    let since = match since.or_else(|| state.clone().filter(|f| f.exists())) {
        Some(path) => Some(
            std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?,
        ),
        None => None,
    };
    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(0)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} verifying [{bar:40}] {pos}/{len} entries ({per_sec}, {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let result = schakel_audit::verifier::verify(
        audit,
        &verifier,
        &origin,
        since.as_deref(),
        |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        },
    )
    .await;
    bar.finish_and_clear();
    match result {
        Ok(verified) => {
            println!(
                "OK: {} entries, {} signed checkpoints, root signed by {}",
                verified.tree_size,
                verified.checkpoints_checked,
                verifier.name()
            );
            let scope = match verified.scope {
                pb::BodyScope::All => "every entry",
                pb::BodyScope::Organisation => "entries of your organisation",
                _ => "none (tree hashes only)",
            };
            println!(
                "bodies in scope ({scope}): {} rehashed, {} outside your scope, {} dropped below the retention frontier {}",
                verified.bodies_checked,
                verified.bodies_withheld,
                verified.bodies_dropped,
                verified.retention_frontier
            );
            if verified.index_checked {
                println!("query index: rebuilt from the verified bodies and identical");
            }
            if let Some(path) = save {
                std::fs::write(&path, &verified.checkpoint_note)
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("checkpoint saved to {}", path.display());
            }
            // Kept for the next run: a log that no longer extends it fails.
            if let Some(path) = state {
                let kept = path
                    .parent()
                    .map_or(Ok(()), std::fs::create_dir_all)
                    .and_then(|()| std::fs::write(&path, &verified.checkpoint_note));
                if let Err(err) = kept {
                    eprintln!(
                        "warning: could not keep the checkpoint in {}: {err}",
                        path.display()
                    );
                }
            }
            Ok(())
        }
        Err(err) => {
            let first = err
                .first_bad_index()
                .map(|i| format!(" (first bad index: {i})"))
                .unwrap_or_default();
            anyhow::bail!("audit log verification FAILED: {err}{first}")
        }
    }
}
