//! The sink process's allocator policy: glibc's malloc keeps the memory it was given back.
//!
//! A sink's memory comes and goes in large pieces: librdkafka's fetch buffers, the batches the
//! poll thread fills (up to 256 KB) and the SDK's request bodies, all held for up to
//! `--max-client-lag` and then freed together. With glibc's defaults each of those round trips
//! costs system calls and page faults: pieces over the (moving) mmap threshold are mapped and
//! unmapped, a thread's heap that grows takes the process's mmap lock to `mprotect` more of
//! itself, and one whose free top passes the trim threshold gives pages back with `madvise`,
//! which the next batch faults in and zeroes again. `perf` put those paths at a tenth of the
//! sink's CPU at 1 KB messages on 96 partitions (`kafka/README.md`, "Cost and throughput").
//!
//! [`keep_freed_memory`] sets, for this process:
//! * `M_MMAP_THRESHOLD` 32 MiB (glibc's own upper bound for its moving threshold): every
//!   buffer the sink uses comes from the heaps, and a freed one is reused;
//! * `M_TRIM_THRESHOLD` the memory budget: freed memory stays with the process up to the
//!   budget it may hold anyway, so the resident size after a burst is its peak, which the
//!   budget bounds (`kafka/README.md`, "Memory");
//! * `M_TOP_PAD` 64 MiB: a heap grows in steps of that, a few `mprotect`s instead of one per
//!   batch (untouched, the padding is address space, not memory).
//!
//! Only the binary calls it: a program that embeds the sink as a library keeps its own policy.
//! Elsewhere than glibc it does nothing.

/// glibc's own upper bound for its moving mmap threshold (`DEFAULT_MMAP_THRESHOLD_MAX`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: usize = 32 << 20;
/// How much a heap grows past what was asked.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TOP_PAD: usize = 64 << 20;

/// Sets glibc malloc's policy for a process whose memory budget is `budget` bytes (see the
/// module docs). Call it before the threads start.
pub fn keep_freed_memory(budget: usize) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let as_int = |n: usize| libc::c_int::try_from(n).unwrap_or(libc::c_int::MAX);
        for (param, value, name) in [
            (
                libc::M_MMAP_THRESHOLD,
                as_int(MMAP_THRESHOLD),
                "M_MMAP_THRESHOLD",
            ),
            (libc::M_TRIM_THRESHOLD, as_int(budget), "M_TRIM_THRESHOLD"),
            (libc::M_TOP_PAD, as_int(TOP_PAD), "M_TOP_PAD"),
        ] {
            // SAFETY: mallopt takes any parameter and value; it answers 0 when it refuses one,
            // and changes nothing then.
            #[allow(unsafe_code)]
            let ok = unsafe { libc::mallopt(param, value) };
            if ok == 0 {
                tracing::debug!("mallopt({name}, {value}) refused: glibc's default stays");
            }
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = budget;
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use std::process::Command;

    /// Resident bytes of this process (`/proc/self/statm`, in pages of 4 KiB).
    fn resident() -> usize {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
        pages * 4096
    }

    /// In a process of its own (see below): 32 MiB of batch-sized buffers, written, then
    /// freed. Prints how much of it the process still holds.
    #[test]
    #[ignore = "run by freed_memory_stays_with_the_process, in a process of its own"]
    fn child_frees_a_burst_of_batches() {
        if std::env::var_os("MALLOC_CHILD").is_some_and(|v| v == "policy") {
            super::keep_freed_memory(512 << 20);
        }
        let bufs: Vec<Vec<u8>> = (0..128).map(|_| vec![1u8; 256 << 10]).collect();
        let full = resident();
        drop(std::hint::black_box(bufs));
        let kept = resident().saturating_sub(full - (32 << 20));
        // On a line of its own: the test harness prints the test's name before it.
        println!("\nkept={kept}");
    }

    /// What a run of the child above kept of its 32 MiB, with or without the policy.
    fn kept(policy: bool) -> usize {
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "malloc::tests::child_frees_a_burst_of_batches"])
            .args(["--ignored", "--nocapture", "--test-threads=1"])
            .env("MALLOC_CHILD", if policy { "policy" } else { "default" })
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        stdout
            .lines()
            .find_map(|l| l.split_once("kept=").map(|(_, n)| n.trim().to_owned()))
            .unwrap_or_else(|| panic!("no kept= in {stdout}"))
            .parse()
            .unwrap()
    }

    /// The sink's batches go back to the heap and stay there for the next ones: with glibc's
    /// defaults a 256 KB buffer is mapped for itself and unmapped when freed (the next batch
    /// faults its pages in again).
    #[test]
    fn freed_memory_stays_with_the_process() {
        let default = kept(false);
        let policy = kept(true);
        assert!(
            default < 8 << 20,
            "glibc's default gave back most of the 32 MiB; it kept {default} bytes"
        );
        assert!(
            policy > 24 << 20,
            "with the policy the process keeps the freed 32 MiB; it kept {policy} bytes"
        );
    }
}
