//! Driving the real `schakel` binary: `schakel dev` as a child process on a
//! random port, and the CLI against it.
#![allow(dead_code, clippy::unwrap_used)]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::Once,
};

/// The `schakel` binary of this build. `cargo test --workspace` builds it
/// (the `schakel` package has integration tests); when a narrower run left it
/// missing or older than the sources, it is built here once.
pub fn schakel_bin() -> PathBuf {
    static BUILD: Once = Once::new();
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let bin = profile_dir.join(format!("schakel{}", std::env::consts::EXE_SUFFIX));
    BUILD.call_once(|| {
        if bin.exists() && modified(&bin) >= newest_source() {
            return;
        }
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args(["build", "-p", "schakel", "--bin", "schakel"]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cargo.arg("--release");
        }
        assert!(
            cargo.status().unwrap().success(),
            "building the schakel binary"
        );
    });
    bin
}

fn modified(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or(std::time::UNIX_EPOCH)
}

/// The newest modification time of the workspace's service and proto sources.
fn newest_source() -> std::time::SystemTime {
    fn walk(dir: &Path, newest: &mut std::time::SystemTime) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, newest);
            } else if path
                .extension()
                .is_some_and(|e| e == "rs" || e == "proto" || e == "sql" || e == "toml")
            {
                *newest = (*newest).max(modified(&path));
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut newest = std::time::UNIX_EPOCH;
    walk(&root.join("services"), &mut newest);
    walk(&root.join("proto"), &mut newest);
    newest
}

/// Held by the tests that load the machine most (the login flood) and the
/// one closest to its call deadline (a policy proposal's proof in a debug
/// build), so that they never run at the same time.
pub fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A `schakel dev` process; killed when dropped.
pub struct DevServer {
    child: Child,
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    /// Its data directory.
    pub data_dir: PathBuf,
}

impl DevServer {
    /// Starts `schakel dev` on a free port with `data_dir` and waits for its
    /// "listening" line (printed once the port is bound and seeded).
    pub fn start(data_dir: &Path) -> Self {
        // Appended, so a restarted server's log follows the first one's.
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.with_extension("stderr.log"))
            .unwrap();
        let mut child = Command::new(schakel_bin())
            .args(["dev", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("schakel dev listening on ")
            .map(str::to_owned)
            .unwrap_or_else(|| {
                let _ = child.kill();
                let log = std::fs::read_to_string(data_dir.with_extension("stderr.log"))
                    .unwrap_or_default();
                panic!("schakel dev did not start: {line:?}\n{log}")
            });
        Self {
            child,
            url,
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// The process id (to read its peak memory).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The dev accounts file, parsed.
    pub fn accounts(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.data_dir.join("dev-accounts.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// The password of a seeded user.
    pub fn password(&self, username: &str) -> String {
        let accounts = self.accounts();
        let account = accounts.iter().find(|a| a["username"] == username).unwrap();
        account["password"].as_str().unwrap().to_owned()
    }

    /// Runs `schakel <args>` against this server, logged in as `username`.
    pub fn cli_as(&self, username: &str, args: &[&str]) -> Output {
        Command::new(schakel_bin())
            .args(args)
            .env("SCHAKEL_URL", &self.url)
            .env("SCHAKEL_CA_CERT", self.data_dir.join("tls/ca.pem"))
            .env(
                "SCHAKEL_AUDIT_STATE_DIR",
                self.data_dir.join("verify-state"),
            )
            .env("SCHAKEL_USERNAME", username)
            .env("SCHAKEL_PASSWORD", self.password(username))
            .env_remove("SCHAKEL_TOKEN")
            .output()
            .unwrap()
    }

    /// Stops the server (SIGKILL; graceful shutdown is tested in-process).
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether python3 can import `module` (the Python tests skip without it).
pub fn python_with(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// python3 running `tests/python/<script>`.
pub fn python(script: &str) -> Command {
    let mut command = Command::new("python3");
    command.arg(format!("{}/python/{script}", env!("CARGO_MANIFEST_DIR")));
    command
}

/// Standard output as text; panics with both streams when the command failed.
pub fn stdout_ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "command failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}
