//! The sink process's allocator policy: glibc's malloc grows its heaps in large steps and keeps
//! batch-sized buffers in them.
//!
//! A sink's memory comes and goes in pieces of up to a few hundred KB: librdkafka's fetch
//! buffers, the batches the poll thread fills (16–256 KB) and the SDK's request bodies, held
//! for up to `--max-client-lag` and then freed. With glibc's defaults, a piece over the
//! (moving) mmap threshold is mapped for itself and unmapped when freed, and a thread's heap
//! grows a page at a time, each step an `mprotect` under the process's mmap lock, which the
//! other threads' page faults wait on. [`keep_freed_memory`] sets, for this process:
//! * `M_MMAP_THRESHOLD` 512 KiB: every buffer the sink makes comes from the heaps and is reused
//!   when freed; larger ones (a 1 MB message's batch) are still mapped and given back;
//! * `M_TOP_PAD` a thirty-second of the memory budget, 1 to 16 MiB: a heap grows in steps of
//!   that, and keeps that much when it shrinks.
//!
//! The trim threshold stays glibc's: keeping every freed byte holds each thread's heap at its
//! own peak, which for the sink's many threads added up to more than its budget.
//! `kafka/README.md` ("Cost and throughput", "Memory") has what each setting measured.
//!
//! Only the binary calls it: a program that embeds the sink as a library keeps its own policy.
//! Elsewhere than glibc it does nothing.

/// Buffers up to this size come from the heaps.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: usize = 512 << 10;

/// How much a heap grows past what was asked (and keeps): a thirty-second of the budget, 1 to
/// 16 MiB.
pub(crate) fn top_pad(budget: usize) -> usize {
    (budget / 32).clamp(1 << 20, 16 << 20)
}

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
            (libc::M_TOP_PAD, as_int(top_pad(budget)), "M_TOP_PAD"),
        ] {
            // SAFETY: mallopt takes any parameter and value; it answers 0 when it refuses one,
            // and changes nothing then.
            #[allow(unsafe_code, reason = "glibc's allocator is tuned through its C call")]
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
    #[ignore = "run by freed_batches_stay_with_the_process_up_to_the_top_pad, in a process of its own"]
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

    /// The child's test name, as the harness knows it (its path without the crate's name).
    fn child_test_name() -> String {
        let module = module_path!().split_once("::").map_or("", |(_, m)| m);
        format!("{module}::child_frees_a_burst_of_batches")
    }

    /// What a run of the child above kept of its 32 MiB, with or without the policy.
    fn kept(policy: bool) -> usize {
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", &child_test_name()])
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

    /// The sink's batches go back to a heap that keeps at least a top pad's worth for the next
    /// ones:
    /// with glibc's defaults a 256 KB buffer is mapped for itself and unmapped when freed (the
    /// next batch faults its pages in again).
    #[test]
    fn freed_batches_stay_with_the_process_up_to_the_top_pad() {
        let default = kept(false);
        let policy = kept(true);
        let pad = super::top_pad(512 << 20);
        assert!(
            default < 4 << 20,
            "glibc's default gave back most of the 32 MiB; it kept {default} bytes"
        );
        assert!(
            policy > pad - (2 << 20),
            "with the policy the process keeps at least its top pad ({pad} bytes) of the \
             freed 32 MiB; it kept {policy} bytes"
        );
    }

    #[test]
    fn the_top_pad_is_a_thirty_second_of_the_budget_from_1_to_16_mib() {
        assert_eq!(super::top_pad(32 << 20), 1 << 20);
        assert_eq!(super::top_pad(64 << 20), 2 << 20);
        assert_eq!(super::top_pad(512 << 20), 16 << 20);
        assert_eq!(super::top_pad(8 << 30), 16 << 20);
    }
}
