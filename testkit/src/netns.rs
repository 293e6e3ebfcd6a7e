//! Servers that cannot be told to bind to loopback (Orthanc, DCMTK's
//! `storescp`), run in a private network namespace and reached through relays
//! on 127.0.0.1.
//!
//! The server runs under `unshare --net` (a namespace with nothing but its own
//! `lo`, brought up first). The test process stays in its own namespace; each
//! relay listens on a 127.0.0.1 port here and forwards every connection to the
//! server's port inside: its thread joins the server's namespace (`setns`)
//! after binding, and since a socket keeps the namespace it was made in, the
//! listener stays here and the connections it makes are there. The namespace
//! goes away with the server and the relay threads, on drop; nothing named is
//! left behind (unlike `ip netns add`).
//!
//! Needs root (or CAP_SYS_ADMIN) for the namespace.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A server in its own network namespace with relays to some of its ports; killed on drop.
pub struct Isolated {
    // Dropped in order: the server is killed first, then the relays leave its namespace.
    child: ChildGuard,
    relays: Vec<(u16, Relay)>,
}

impl Isolated {
    /// Runs `program args` in a new network namespace with `TCP_NODELAY=1` (Debian's DCMTK
    /// and Orthanc otherwise wait ~40 ms per message on Nagle), stdout and stderr to `log`,
    /// working directory `dir`. Each `(inside, here)` of `ports` relays 127.0.0.1:`here`
    /// (0: any free port) to the server's port `inside`. The relays exist at once; until
    /// the server listens, a connection through one is accepted and closed.
    pub fn spawn(program: &str, args: &[String], dir: &Path, log: &Path, ports: &[(u16, u16)]) -> Result<Self, String> {
        let out = std::fs::File::create(log).map_err(|e| format!("creating {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        // `unshare` and `sh` exec into the next program, so the child's pid ends up the server's.
        let child = Command::new("unshare")
            .args([
                "--net",
                "sh",
                "-c",
                "ip link set lo up && exec env TCP_NODELAY=1 \"$@\"",
                "sh",
            ])
            .arg(program)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot run unshare: {e}"))?;
        let mut child = ChildGuard(Some(child));
        let log_tail = || std::fs::read_to_string(log).unwrap_or_default();
        let ns = child
            .wait_for_own_namespace()
            .map_err(|e| format!("{e}; output:\n{}", log_tail()))?;
        let mut relays = Vec::new();
        for &(inside, here) in ports {
            relays.push((inside, Relay::start(&ns, inside, here)?));
        }
        Ok(Isolated { child, relays })
    }

    /// Where the server's port `inside` is reachable from this process.
    pub fn addr(&self, inside: u16) -> Option<SocketAddr> {
        self.relays.iter().find(|(p, _)| *p == inside).map(|(_, r)| r.addr)
    }

    /// True while the server runs.
    pub fn running(&mut self) -> bool {
        self.child.0.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

/// Kills the child when dropped (a start that fails halfway leaves nothing running).
struct ChildGuard(Option<Child>);

impl ChildGuard {
    /// Waits until the child has left our network namespace; returns its namespace file.
    fn wait_for_own_namespace(&mut self) -> Result<PathBuf, String> {
        let Some(child) = self.0.as_mut() else {
            return Err("no child".into());
        };
        let ours = std::fs::metadata("/proc/self/ns/net").map_err(|e| format!("/proc/self/ns/net: {e}"))?;
        let theirs = PathBuf::from(format!("/proc/{}/ns/net", child.id()));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "`unshare --net` ended with {status} (a network namespace needs root or CAP_SYS_ADMIN)"
                ));
            }
            if let Ok(m) = std::fs::metadata(&theirs) {
                if (m.dev(), m.ino()) != (ours.dev(), ours.ino()) {
                    return Ok(theirs);
                }
            }
            if Instant::now() >= deadline {
                return Err("the child never entered a new network namespace".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A listener on 127.0.0.1 here whose connections go to a port in another namespace.
struct Relay {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    /// Listens on 127.0.0.1:`here` (0: any free port) and relays to `port` in namespace `ns`.
    fn start(ns: &Path, port: u16, here: u16) -> Result<Relay, String> {
        let listener =
            TcpListener::bind(("127.0.0.1", here)).map_err(|e| format!("relay bind 127.0.0.1:{here}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let ns_file = std::fs::File::open(ns).map_err(|e| format!("opening {}: {e}", ns.display()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            // SAFETY: setns on a valid, open namespace fd; it changes only this thread's namespace.
            let rc = unsafe { libc::setns(ns_file.as_raw_fd(), libc::CLONE_NEWNET) };
            let joined = if rc == 0 {
                Ok(())
            } else {
                Err(format!("setns: {}", std::io::Error::last_os_error()))
            };
            let ok = joined.is_ok();
            let _ = ready_tx.send(joined);
            // The fd is no longer needed: the thread's membership keeps the namespace alive.
            drop(ns_file);
            if !ok {
                return;
            }
            for incoming in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(outside) = incoming else { continue };
                // Made on this thread, so inside the namespace.
                match TcpStream::connect(("127.0.0.1", port)) {
                    Ok(inside) => pipe(outside, inside),
                    Err(_) => drop(outside),
                }
            }
        });
        match ready_rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(())) => Ok(Relay {
                addr,
                stop,
                thread: Some(thread),
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err("relay thread did not start".into()),
        }
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept so the thread sees the flag and leaves the namespace.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Copies both ways until either side closes.
fn pipe(a: TcpStream, b: TcpStream) {
    let _ = a.set_nodelay(true);
    let _ = b.set_nodelay(true);
    let (Ok(a2), Ok(b2)) = (a.try_clone(), b.try_clone()) else {
        return;
    };
    std::thread::spawn(move || copy_then_close(a, b2));
    std::thread::spawn(move || copy_then_close(b, a2));
}

fn copy_then_close(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(std::net::Shutdown::Write);
}
