//! What a server process spends: its CPU time, read from `/proc` before and
//! after a measured window, so the bench can quote CPU per message beside
//! the throughput (which on a shared 2-core machine measures scheduling as
//! much as the server).
//!
//! The total is the sum over the process's threads of the nanoseconds each
//! spent on a CPU (`/proc/PID/task/TID/schedstat`, first field): exact, not
//! sampled. Threads that ended inside the window are not in that sum, so
//! then (the churn scenario, with a thread per connection) the process's
//! `utime + stime` (`/proc/PID/stat`, in clock ticks of 10 ms: ±20 ms on a
//! pair of readings) is used instead. The user/system split always comes
//! from `/proc/PID/stat`, which the kernel samples at the tick: approximate.

use std::collections::HashMap;
use std::fs;

/// Clock ticks per second (`getconf CLK_TCK`, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// One reading of a process's CPU time.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    /// Nanoseconds on a CPU per live thread, by thread id.
    threads: HashMap<u32, u64>,
    /// `utime` and `stime` in clock ticks (threads that ended included).
    user_ticks: u64,
    sys_ticks: u64,
}

/// CPU spent between two readings.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spent {
    /// Seconds on a CPU, user and system together.
    pub total: f64,
    /// The share of `total` spent in the kernel (approximate: see the module docs).
    pub sys_share: f64,
    /// Whether `total` is exact (no thread ended in between) or from ticks.
    pub exact: bool,
}

/// Reads process `pid`'s CPU time now; `None` if it cannot (no `/proc`).
pub fn read(pid: u32) -> Option<Reading> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold
    // spaces: utime and stime are fields 14 and 15 of the line.
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let user_ticks = fields.get(11)?.parse().ok()?;
    let sys_ticks = fields.get(12)?.parse().ok()?;
    let mut threads = HashMap::new();
    for task in fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Ok(task) = task else { continue };
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        let Ok(schedstat) = fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        if let Some(ns) = schedstat
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
        {
            threads.insert(tid, ns);
        }
    }
    Some(Reading {
        threads,
        user_ticks,
        sys_ticks,
    })
}

/// How many threads process `pid` has now.
pub fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count())
}

/// What was spent from `before` to `after`.
pub fn spent(before: &Reading, after: &Reading) -> Spent {
    let user = after.user_ticks.saturating_sub(before.user_ticks) as f64;
    let sys = after.sys_ticks.saturating_sub(before.sys_ticks) as f64;
    let ticks = (user + sys) / TICKS_PER_SEC;
    let sys_share = if user + sys > 0.0 {
        sys / (user + sys)
    } else {
        f64::NAN
    };
    let all_lived = before.threads.keys().all(|t| after.threads.contains_key(t));
    if !all_lived {
        return Spent {
            total: ticks,
            sys_share,
            exact: false,
        };
    }
    let ns: u64 = after
        .threads
        .iter()
        .map(|(tid, &ns)| ns.saturating_sub(before.threads.get(tid).copied().unwrap_or(0)))
        .sum();
    Spent {
        total: ns as f64 / 1e9,
        sys_share,
        exact: true,
    }
}
