//! What the hostile suite's file surfaces (`--connector-config`, `--kafka-config`) share: the
//! secret a case's file holds, the file written as a deployment would write it (mode 0600), and
//! one `snowpipe-kafka check` run under the harness.

use std::path::Path;
use std::process::Command;

use snowpipe_hostile::gen::Class;
use snowpipe_hostile::{Case, Input, Limits, Outcome, Rng};

/// A secret of 16 lowercase letters from `rng`: found in the output, it is no accident.
pub(crate) fn secret(rng: &mut Rng) -> String {
    (0..16)
        .map(|_| char::from(b'a' + rng.below(26) as u8))
        .collect()
}

/// Writes `bytes` to `file` with mode 0600, as a file holding secrets should be: the sink's
/// warning about a readable file names it, and must not stand in for a refusal that names it.
pub(crate) fn write_private(file: &Path, bytes: &[u8]) {
    std::fs::write(file, bytes).unwrap();
    std::fs::set_permissions(file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
}

/// Runs `cmd` (stdin empty) under `l` off the async workers and prints its summary as case
/// `case` of the surface `surface`.
pub(crate) async fn run_case(
    cmd: Command,
    l: Limits,
    surface: &str,
    case: &Case<Class>,
) -> Outcome {
    let o =
        tokio::task::spawn_blocking(move || snowpipe_hostile::run(cmd, Input::Null, &l).unwrap())
            .await
            .unwrap();
    eprintln!(
        "hostile {surface} case {} ({:?}): {}",
        case.index,
        case.class,
        o.summary()
    );
    o
}
