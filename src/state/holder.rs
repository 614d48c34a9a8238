//! ## Overview
//!
//! Who holds the state lock, written so that a later run can *prove* the holder is gone.
//!
//! A lock whose holder died (SIGKILL, a crash) renews nothing; waiting out its TTL is safe but
//! slow, so a run may take it over at once, but only when the holder is provably dead. A hostname
//! and a pid do not prove that: cloud images and pods share hostnames, and a pid absent from this
//! machine's `/proc` may be alive on another machine, or in another pid namespace of this one. So
//! the holder names:
//! - the machine (`/etc/machine-id`) and its boot (`/proc/sys/kernel/random/boot_id`): another
//!   machine, or this one before a reboot, proves nothing here;
//! - the pid namespace (`/proc/self/ns/pid`): a pid means something only in its namespace;
//! - the pid and the process's start time (field 22 of `/proc/PID/stat`, in clock ticks since
//!   boot): a pid reused by a new process is not the holder.
//!
//! The holder is gone when all four of machine, boot, namespace match ours and no process with
//! that pid and start time exists. Anything else, including a holder written by an older release
//! or an identity that cannot be read, waits for the lease to expire.

use std::path::Path;

/// One process's identity, as written into a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub start: u64,
    pub pid_ns: String,
    pub machine: String,
    pub boot: String,
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// The start time of `pid`, from `/proc/PID/stat`. The command name (field 2) may hold spaces and
/// parentheses, so the fields are counted after its last `)`: field 22 is the 20th from there.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `/proc` is mounted with `hidepid` (other than 0/off): then a process of another user
/// may be alive and still be missing from it.
fn proc_hides_processes() -> bool {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") else { return true };
    mounts
        .lines()
        .filter(|l| l.split_whitespace().nth(4) == Some("/proc"))
        .any(|l| l.split([' ', ',']).any(|opt| opt.strip_prefix("hidepid=").is_some_and(|v| !matches!(v, "0" | "off"))))
}

impl Holder {
    /// This process, if every part of its identity can be read.
    pub fn current() -> Option<Self> {
        let pid = std::process::id();
        Some(Self {
            pid,
            start: start_time(pid)?,
            pid_ns: std::fs::read_link("/proc/self/ns/pid").ok()?.display().to_string(),
            machine: read_trimmed("/etc/machine-id").or_else(|| read_trimmed("/var/lib/dbus/machine-id"))?,
            boot: read_trimmed("/proc/sys/kernel/random/boot_id")?,
        })
    }

    /// `pid P, start T, ns N, machine M, boot B`: what goes inside the holder's parentheses.
    fn render(&self) -> String {
        format!(
            "pid {}, start {}, ns {}, machine {}, boot {}",
            self.pid, self.start, self.pid_ns, self.machine, self.boot
        )
    }

    /// Reads the identity back from a holder string; `None` for any other form.
    pub fn parse(holder: &str) -> Option<Self> {
        let (_, inner) = holder.rsplit_once(" (")?;
        let inner = inner.strip_suffix(')')?;
        let mut fields = std::collections::BTreeMap::new();
        for part in inner.split(", ") {
            let (k, v) = part.split_once(' ')?;
            fields.insert(k, v);
        }
        Some(Self {
            pid: fields.get("pid")?.parse().ok()?,
            start: fields.get("start")?.parse().ok()?,
            pid_ns: fields.get("ns")?.to_string(),
            machine: fields.get("machine")?.to_string(),
            boot: fields.get("boot")?.to_string(),
        })
    }

    /// Whether this holder is provably gone, seen from `me` (see the module docs). Where `/proc`
    /// hides other users' processes (`hidepid`), an absent pid proves nothing.
    pub fn is_gone_seen_from(&self, me: &Holder) -> bool {
        let same_place = self.machine == me.machine && self.boot == me.boot && self.pid_ns == me.pid_ns;
        same_place
            && self.pid != me.pid
            && Path::new("/proc/self").exists()
            && !proc_hides_processes()
            && start_time(self.pid) != Some(self.start)
    }
}

/// The holder string of this process: `user@host (pid …, start …, ns …, machine …, boot …)`, or
/// `user@host (pid P)` where the identity cannot be read (such a lock is never taken over).
pub fn describe_current() -> String {
    let user = std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "unknown".into());
    let host = read_trimmed("/etc/hostname").unwrap_or_else(|| "localhost".into());
    match Holder::current() {
        Some(h) => format!("{user}@{host} ({})", h.render()),
        None => format!("{user}@{host} (pid {})", std::process::id()),
    }
}

/// Whether the lock `holder` may be taken over at once by this process.
pub fn is_gone(holder: &str) -> bool {
    match (Holder::parse(holder), Holder::current()) {
        (Some(theirs), Some(me)) => theirs.is_gone_seen_from(&me),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> Holder {
        Holder::current().expect("this test runs on Linux with /proc")
    }

    #[test]
    fn the_current_holder_round_trips() {
        let text = describe_current();
        assert_eq!(Holder::parse(&text), Some(me()), "{text}");
        assert!(!is_gone(&text), "this very process is alive");
    }

    #[test]
    fn only_a_vanished_process_of_this_machine_boot_and_namespace_is_gone() {
        let me = me();
        let dead = Holder { pid: 4_000_000, ..me.clone() };
        assert!(dead.is_gone_seen_from(&me), "no such pid here");
        let pid1 = Holder { pid: 1, start: start_time(1).unwrap_or(0), ..me.clone() };
        assert!(!pid1.is_gone_seen_from(&me), "pid 1 with its own start time is alive");
        let reused = Holder { pid: 1, start: start_time(1).unwrap_or(0) + 1, ..me.clone() };
        assert!(reused.is_gone_seen_from(&me), "a pid now held by another process: the holder is gone");
        for other in [
            Holder { machine: "another-machine".into(), ..dead.clone() },
            Holder { boot: "another-boot".into(), ..dead.clone() },
            Holder { pid_ns: "pid:[1]".into(), ..dead.clone() },
        ] {
            assert!(!other.is_gone_seen_from(&me), "{other:?} cannot be proven gone from here");
        }
    }

    #[test]
    fn this_machines_proc_shows_every_process() {
        // The takeover tests above rely on it; a hidepid mount would make them vacuous.
        assert!(!proc_hides_processes());
    }

    #[test]
    fn holders_of_other_forms_are_never_taken_over() {
        for h in ["ci@box (pid 4000000)", "someone", "x (pid 1, start y, ns n, machine m, boot b)", ""] {
            assert!(!is_gone(h), "{h}");
        }
    }
}
