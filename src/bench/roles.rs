//! The processes a benchmark starts — the raw lapin echo worker, the intercomm echo worker and
//! the gateway — each this same binary in its own process, so that each role's CPU time and peak
//! memory are read from its own `/proc/<pid>`, apart from the load generator's.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// What a serving child prints on standard output once it consumes.
pub const READY_LINE: &str = "ready";
/// How long a child may take to connect and declare its topology.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a child may take to stop once asked.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running role process.
#[derive(Debug)]
pub struct RoleProcess {
    role: &'static str,
    child: Child,
    pid: u32,
}

impl RoleProcess {
    /// Start `intercomm <args>` and wait until it prints [`READY_LINE`]; it stops when its
    /// standard input closes.
    ///
    /// # Errors
    /// When the process cannot start or exits before it is ready.
    pub async fn serve(role: &'static str, args: &[&str]) -> anyhow::Result<Self> {
        let mut child = command(args)?
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting the {role} process"))?;
        let stdout = child.stdout.take().context("child stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = async {
            while let Some(line) = lines.next_line().await? {
                if line.trim() == READY_LINE {
                    return anyhow::Ok(true);
                }
            }
            anyhow::Ok(false)
        };
        match tokio::time::timeout(START_TIMEOUT, ready).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => bail!("the {role} process exited before it was ready"),
            Ok(Err(error)) => return Err(error.context(format!("reading the {role} process"))),
            Err(_) => bail!("the {role} process was not ready within {START_TIMEOUT:?}"),
        }
        Self::adopt(role, child)
    }

    /// Start `intercomm <args>` with extra environment; readiness is the caller's to check.
    ///
    /// # Errors
    /// When the process cannot start.
    pub fn spawn(role: &'static str, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let mut command = command(args)?;
        // Its standard output stays out of the bench's own (which may be `--json`).
        command
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let child = command
            .spawn()
            .with_context(|| format!("starting the {role} process"))?;
        Self::adopt(role, child)
    }

    fn adopt(role: &'static str, child: Child) -> anyhow::Result<Self> {
        let pid = child
            .id()
            .with_context(|| format!("the {role} process exited"))?;
        Ok(Self { role, child, pid })
    }

    /// The process id, for `/proc` readings.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Ask it to stop (close its standard input and send SIGTERM), then wait; kill it if it
    /// does not stop in time.
    pub async fn stop(mut self) {
        drop(self.child.stdin.take());
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(Ok(status)) if status.success() => {}
            Ok(Ok(status)) => eprintln!("the {} process ended with {status}", self.role),
            _ => {
                eprintln!("the {} process did not stop; killing it", self.role);
                let _ = self.child.kill().await;
            }
        }
    }
}

/// This binary with `args`, its logs down to warnings unless `RUST_LOG` says otherwise, killed
/// if the bench itself goes away first.
fn command(args: &[&str]) -> anyhow::Result<Command> {
    let exe = std::env::current_exe().context("locating the intercomm binary")?;
    let mut command = Command::new(exe);
    command.args(args).kill_on_drop(true);
    if std::env::var_os("RUST_LOG").is_none() {
        command.env("RUST_LOG", "warn");
    }
    Ok(command)
}

/// Tell the parent bench this process is ready, then wait until it closes standard input (or
/// sends SIGTERM/Ctrl-C).
pub async fn announce_ready_and_wait_for_stop() {
    println!("{READY_LINE}");
    // A plain thread reads standard input: tokio's stdin needs a feature nothing else uses.
    let (closed, stdin_closed) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        let _ = closed.send(());
    });
    tokio::select! {
        _ = stdin_closed => {}
        () = intercomm_core::shutdown::signal() => {}
    }
}
