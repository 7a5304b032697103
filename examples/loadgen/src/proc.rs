//! A process's resident memory and CPU time, read from Linux's `/proc`.

use std::time::Duration;

/// `/proc/<pid>/stat` counts CPU time in USER_HZ ticks, which Linux fixes at 100 per second
/// for user space on every architecture it ships.
const TICKS_PER_SECOND: u64 = 100;

fn path(pid: Option<u32>, file: &str) -> String {
    match pid {
        Some(pid) => format!("/proc/{pid}/{file}"),
        None => format!("/proc/self/{file}"),
    }
}

/// The resident set size of process `pid` (this process when `None`), in KiB.
pub(crate) fn rss_kib(pid: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(path(pid, "status")).ok()?;
    let line = status.lines().find_map(|line| line.strip_prefix("VmRSS:"))?;
    line.trim().trim_end_matches("kB").trim().parse().ok()
}

/// The CPU time (user + system) process `pid` (this process when `None`) has used.
pub(crate) fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let stat = std::fs::read_to_string(path(pid, "stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 1..)?.split_whitespace().collect();
    // After the name: state is field 3 of proc(5), utime 14 and stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 1000 / TICKS_PER_SECOND))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_memory_and_cpu_time() {
        let busy: u64 = (0..2_000_000u64).map(|i| i % 7).sum();
        assert!(busy > 0);
        assert!(rss_kib(None).is_some_and(|kib| kib > 100));
        assert!(cpu_time(None).is_some());
        assert!(rss_kib(Some(u32::MAX)).is_none(), "no such process");
    }
}
