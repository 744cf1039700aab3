//! Network namespaces for partitions: each node in its own namespace,
//! joined by a veth pair to a bridge the run creates in the host namespace
//! (where the clients run, through the bridge's own address). A partition
//! is a set of nftables drop rules in the receiving nodes' namespaces,
//! by source address; clients (the bridge's address) are never cut, as in
//! the simulator.
//!
//! Names carry the driver's pid (`rlj-PID-nI` namespaces, `rjPIDbr` bridge,
//! `rjPIDvI` veths), so that a run removes its own at exit and, at the next
//! start, whatever a run whose pid is gone left behind; a concurrent run's
//! are left alone.

use std::process::{Command, Stdio};

/// The namespaces, links and addresses of one run.
pub struct Net {
    pid: u32,
    nodes: usize,
    /// The /24 the run uses: 10.A.B.0.
    subnet: (u8, u8),
}

/// Runs a command, quietly; its error output on failure.
fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Runs a command and returns its output.
fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether `program` runs at all.
fn present(program: &str, probe: &str) -> bool {
    Command::new(program)
        .arg(probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Whether the driver runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Whether partitions can be made here; if not, why. Installs iproute2 and
/// nftables with apt-get when they are missing and we are root (and says
/// so); never assumes.
pub fn available() -> Result<(), String> {
    if !is_root() {
        return Err("not root: network namespaces need root".into());
    }
    for (program, package) in [("ip", "iproute2"), ("nft", "nftables")] {
        if !present(program, "-V") {
            eprintln!("{program} is missing: installing {package} with apt-get ...");
            let ok = Command::new("apt-get")
                .args(["install", "-y", "-q", package])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok || !present(program, "-V") {
                return Err(format!(
                    "{program} is missing and `apt-get install -y {package}` did not provide it"
                ));
            }
        }
    }
    // A namespace of our own proves the kernel lets us.
    let probe = format!("rlj-{}-probe", std::process::id());
    run("ip", &["netns", "add", &probe])
        .map_err(|e| format!("cannot create a network namespace: {e}"))?;
    let _ = run("ip", &["netns", "del", &probe]);
    Ok(())
}

/// Whether process `pid` still exists.
fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes the namespaces and bridges of earlier runs whose driver is gone
/// (nothing without root or iproute2).
pub fn remove_stale() {
    if !is_root() || !present("ip", "-V") {
        return;
    }
    if let Some(list) = output("ip", &["netns", "list"]) {
        for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
            let pid = name
                .strip_prefix("rlj-")
                .and_then(|r| r.split('-').next())
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(pid) = pid
                && !alive(pid)
            {
                eprintln!("removing namespace {name}, left by an earlier run");
                let _ = run("ip", &["netns", "del", name]);
            }
        }
    }
    if let Some(list) = output("ip", &["-o", "link", "show"]) {
        for line in list.lines() {
            // "7: rj123br: <...": the name, without any "@peer".
            let Some(name) = line.split(':').nth(1).map(str::trim) else {
                continue;
            };
            let name = name.split('@').next().unwrap_or(name);
            let pid = name
                .strip_prefix("rj")
                .map(|r| {
                    r.chars()
                        .take_while(char::is_ascii_digit)
                        .collect::<String>()
                })
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(pid) = pid
                && !alive(pid)
            {
                eprintln!("removing link {name}, left by an earlier run");
                let _ = run("ip", &["link", "del", name]);
            }
        }
    }
}

impl Net {
    /// Creates `nodes` namespaces, their veths, the bridge and the
    /// addresses, and an empty nftables filter in each namespace.
    pub fn create(nodes: usize) -> Result<Net, String> {
        let pid = std::process::id();
        let net = Net {
            pid,
            nodes,
            subnet: (200 + (pid % 50) as u8, ((pid / 50) % 256) as u8),
        };
        // On failure the Drop removes whatever was made.
        net.build()?;
        Ok(net)
    }

    fn bridge(&self) -> String {
        format!("rj{}br", self.pid)
    }

    /// Node `i`'s (0-based) namespace.
    pub fn namespace(&self, i: usize) -> String {
        format!("rlj-{}-n{}", self.pid, i + 1)
    }

    /// Node `i`'s (0-based) address.
    pub fn ip(&self, i: usize) -> String {
        format!("10.{}.{}.{}", self.subnet.0, self.subnet.1, i + 1)
    }

    fn build(&self) -> Result<(), String> {
        let br = self.bridge();
        let host_ip = format!("10.{}.{}.254/24", self.subnet.0, self.subnet.1);
        run("ip", &["link", "add", &br, "type", "bridge"])?;
        run("ip", &["addr", "add", &host_ip, "dev", &br])?;
        run("ip", &["link", "set", &br, "up"])?;
        for i in 0..self.nodes {
            let ns = self.namespace(i);
            let host_end = format!("rj{}v{}", self.pid, i + 1);
            let node_end = format!("rj{}w{}", self.pid, i + 1);
            run("ip", &["netns", "add", &ns])?;
            run(
                "ip",
                &[
                    "link", "add", &host_end, "type", "veth", "peer", "name", &node_end,
                ],
            )?;
            run("ip", &["link", "set", &node_end, "netns", &ns])?;
            run("ip", &["link", "set", &host_end, "master", &br])?;
            run("ip", &["link", "set", &host_end, "up"])?;
            let addr = format!("{}/24", self.ip(i));
            let in_ns = |args: &[&str]| {
                let mut all = vec!["netns", "exec", &ns];
                all.extend_from_slice(args);
                run("ip", &all)
            };
            in_ns(&["ip", "link", "set", "lo", "up"])?;
            in_ns(&["ip", "addr", "add", &addr, "dev", &node_end])?;
            in_ns(&["ip", "link", "set", &node_end, "up"])?;
            in_ns(&["nft", "add", "table", "inet", "raftlab"])?;
            in_ns(&[
                "nft",
                "add chain inet raftlab input { type filter hook input priority 0 ; policy accept ; }",
            ])?;
        }
        Ok(())
    }

    /// Cuts the directed links `cut` ((from, to) 0-based): `to` drops
    /// what `from` sends. Replaces any earlier partition.
    pub fn partition(&self, cut: &[(usize, usize)]) -> Result<(), String> {
        self.heal()?;
        for &(from, to) in cut {
            let ns = self.namespace(to);
            let rule = format!(
                "add rule inet raftlab input ip saddr {} drop",
                self.ip(from)
            );
            run("ip", &["netns", "exec", &ns, "nft", &rule])?;
        }
        Ok(())
    }

    /// Removes every drop rule.
    pub fn heal(&self) -> Result<(), String> {
        for i in 0..self.nodes {
            let ns = self.namespace(i);
            run(
                "ip",
                &[
                    "netns",
                    "exec",
                    &ns,
                    "nft",
                    "flush chain inet raftlab input",
                ],
            )?;
        }
        Ok(())
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end in it, and so its peer.
        for i in 0..self.nodes {
            let _ = run("ip", &["netns", "del", &self.namespace(i)]);
        }
        let _ = run("ip", &["link", "del", &self.bridge()]);
    }
}
