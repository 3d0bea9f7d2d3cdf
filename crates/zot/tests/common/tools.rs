//! Running the external clients the end-to-end tests drive.
//!
//! A missing tool is a test failure, never a skip: `scripts/test` installs
//! them. Every run has a deadline so that a hung client or registry fails the
//! test with the output so far instead of hanging the suite.

use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long any single external command may run.
pub const COMMAND_DEADLINE: Duration = Duration::from_secs(180);

/// A `Command` for an external tool, after checking that it is installed.
pub fn tool(name: &str) -> Command {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{name}` is not installed (not on PATH); `scripts/test` installs the end-to-end test tools"
    );
    let mut cmd = Command::new(name);
    cmd.stdin(Stdio::null());
    cmd
}

/// skopeo with no dependency on the machine's signature policy and a deadline
/// of its own.
pub fn skopeo() -> Command {
    let mut cmd = tool("skopeo");
    cmd.args(["--insecure-policy", "--command-timeout", "120s"]);
    cmd
}

/// umoci operating on an OCI layout.
pub fn umoci() -> Command {
    tool("umoci")
}

fn describe(cmd: &Command) -> String {
    let mut line = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// Run a command to completion (or kill it at the deadline) and capture
/// its output. Panics only if it cannot be started.
pub fn output(cmd: &mut Command) -> (Output, bool) {
    let line = describe(cmd);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{line}`: {e}"));
    let mut out = child.stdout.take().expect("stdout is piped");
    let mut err = child.stderr.take().expect("stderr is piped");
    let out_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let start = Instant::now();
    let mut timed_out = false;
    let status: ExitStatus = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > COMMAND_DEADLINE => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().expect("wait for killed command");
            }
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("waiting for `{line}`: {e}"),
        }
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    (
        Output {
            status,
            stdout,
            stderr,
        },
        timed_out,
    )
}

fn report(cmd: &Command, out: &Output, timed_out: bool) -> String {
    format!(
        "`{}`\n  status: {}{}\n  stdout:\n{}\n  stderr:\n{}",
        describe(cmd),
        out.status,
        if timed_out {
            " (killed at the deadline)"
        } else {
            ""
        },
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    )
}

/// Run a command that must succeed; returns its output.
pub fn run(cmd: &mut Command) -> Output {
    let (out, timed_out) = output(cmd);
    assert!(
        out.status.success() && !timed_out,
        "command failed: {}",
        report(cmd, &out, timed_out)
    );
    out
}

/// Run a command that must succeed; returns its stdout as text.
pub fn run_stdout(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run(cmd).stdout).into_owned()
}

/// Run a command that must fail (non-zero exit, not a timeout); returns its
/// output so the caller can check the reason.
pub fn run_fails(cmd: &mut Command) -> Output {
    let (out, timed_out) = output(cmd);
    assert!(
        !out.status.success() && !timed_out,
        "command should have failed: {}",
        report(cmd, &out, timed_out)
    );
    out
}

/// `skopeo inspect --raw` of any transport reference: the manifest bytes.
pub fn skopeo_raw_manifest(reference: &str) -> Vec<u8> {
    run(skopeo().args(["inspect", "--raw", "--tls-verify=false", reference])).stdout
}

/// `skopeo inspect` of a reference, parsed.
pub fn skopeo_inspect(reference: &str) -> serde_json::Value {
    let out = run(skopeo().args(["inspect", "--tls-verify=false", reference]));
    serde_json::from_slice(&out.stdout).expect("skopeo inspect prints JSON")
}

/// `skopeo copy` between two references with plain HTTP on both ends,
/// returning the digest of the manifest it wrote.
pub fn skopeo_copy(extra: &[&str], from: &str, to: &str, work: &Path) -> String {
    let digest_file = work.join(format!("digest-{}", rand_suffix()));
    let mut cmd = skopeo();
    cmd.args(["copy", "--src-tls-verify=false", "--dest-tls-verify=false"]);
    cmd.arg("--digestfile").arg(&digest_file);
    cmd.args(extra).args([from, to]);
    run(&mut cmd);
    let digest = std::fs::read_to_string(&digest_file).expect("skopeo wrote the digest file");
    digest.trim().to_owned()
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
