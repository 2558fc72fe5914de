//! Starting the servers under test pinned to one core, timing their start-up, reading their
//! memory, stopping them.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use tokio::process::{Child, Command};

use crate::http::Client;

/// A running server process.
pub struct Server {
    child: Child,
    pub pid: u32,
    /// Spawn until the readiness path first answered 200.
    pub startup: Duration,
}

/// How to start one server.
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub dir: PathBuf,
    pub addr: SocketAddr,
    /// Polled until it answers 200: `/readyz` for connect, discovery for the peer.
    pub ready_path: String,
    /// The core to pin to (`taskset -c`), when the machine has two.
    pub core: Option<usize>,
    /// stdout and stderr go here.
    pub log: PathBuf,
}

impl Launch {
    pub async fn start(&self) -> anyhow::Result<Server> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("open {}", self.log.display()))?;
        // taskset execs the program: the pid we get is the server's.
        let mut cmd = match self.core {
            Some(core) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(core.to_string()).arg(&self.program);
                c
            }
            None => Command::new(&self.program),
        };
        cmd.args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("start {}", self.program.display()))?;
        let pid = child.id().context("the server's pid")?;
        let deadline = started + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "{} exited ({status}) before it was ready; see {}",
                    self.program.display(),
                    self.log.display()
                );
            }
            let mut probe = Client::new(self.addr);
            if let Ok(res) = probe.get(&self.ready_path, None).await {
                if res.status == 200 {
                    break;
                }
            }
            if Instant::now() > deadline {
                bail!("not ready after 60 s; see {}", self.log.display());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(Server {
            startup: started.elapsed(),
            child,
            pid,
        })
    }
}

impl Server {
    /// Ctrl-C (SIGINT, which both servers take as "stop"), then SIGKILL after 10 s.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        // SAFETY: kill(2) on the pid of our own child, which we have not reaped yet.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGINT);
        }
        match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => {
                self.child.kill().await?;
            }
        }
        Ok(())
    }

    /// Resident set size now, in bytes.
    pub fn rss(&self) -> u64 {
        rss_of(self.pid)
    }

    /// The high-water mark of the resident set since the last [`Server::reset_peak`].
    pub fn peak(&self) -> u64 {
        status_kib(self.pid, "VmHWM:").unwrap_or(0) * 1024
    }

    /// Starts a new high-water mark (`5` to `/proc/<pid>/clear_refs`, Linux ≥ 4.0; needs
    /// the right to write it, as the owner of the process has). Says whether it could.
    pub fn reset_peak(&self) -> bool {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid), "5").is_ok()
    }
}

/// Resident set size of a process, in bytes (0 once it is gone).
pub fn rss_of(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:").unwrap_or(0) * 1024
}

/// CPU time (user + system) a process has used so far; `self` for this process.
pub fn cpu_time(pid: Option<u32>) -> Duration {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let Ok(stat) = std::fs::read_to_string(path) else {
        return Duration::ZERO;
    };
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    // utime and stime are fields 14 and 15 of proc(5), 12 and 13 after the name.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Duration::from_secs_f64(ticks as f64 / hz)
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// A free port on 127.0.0.1 (bound and released; the server binds it again at once).
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?)
}

/// Runs a command to its end; its output in the error when it fails.
pub async fn run(
    program: &Path,
    args: &[&str],
    env: &[(String, String)],
    stdin: Option<&str>,
) -> anyhow::Result<String> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("run {}", program.display()))?;
    if let Some(input) = stdin {
        use tokio::io::AsyncWriteExt;
        let mut pipe = child.stdin.take().context("stdin")?;
        pipe.write_all(input.as_bytes()).await?;
        drop(pipe);
    }
    let out = child.wait_with_output().await?;
    if !out.status.success() {
        bail!(
            "{} {}: {}{}",
            program.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
