//! Issue 81, the files around the records: the dead-letter file planted as a symbolic link or
//! created beside a private input, a FIFO given as an input, control characters in a file
//! name. Each through the binary.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt as _;
use std::time::{Duration, Instant};

use crate::common::{ndjson, Lab, Run};
use snowpipe_cli_support::process::{signal, Signal};

fn with_a_bad_record(path: &std::path::Path) {
    let mut data = ndjson(1..=3);
    data.push_str("not json\n");
    data.push_str(&ndjson(4..=5));
    std::fs::write(path, data).unwrap();
}

#[test]
fn the_dead_letter_file_gets_the_inputs_permissions_and_never_follows_a_link() {
    let lab = Lab::new();
    let private = lab.path("private.ndjson");
    with_a_bad_record(&private);
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    let s = lab.load(&[&private], &[]).ok();
    assert_eq!(s["bad_records"], 1, "{s}");
    let dead = std::fs::metadata(lab.path("private.ndjson.rejected.ndjson")).unwrap();
    assert_eq!(dead.permissions().mode() & 0o777, 0o600);

    // A link planted at the dead-letter file's name: refused, its target untouched.
    let victim = lab.path("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    let input = lab.path("planted.ndjson");
    with_a_bad_record(&input);
    std::os::unix::fs::symlink(&victim, lab.path("planted.ndjson.rejected.ndjson")).unwrap();
    let run = lab.load(&[&input], &[]);
    assert_ne!(run.code, Some(0), "{run:#?}");
    let error = run.summary["per_file"][0]["error"].as_str().unwrap();
    assert!(error.contains("symbolic link"), "{error}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
}

#[test]
fn a_fifo_input_is_refused_at_once_and_the_next_file_lands() {
    let lab = Lab::new();
    let fifo = lab.path("pipe.ndjson");
    let name = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    #[allow(unsafe_code, reason = "a FIFO for the test, through libc")]
    let made = unsafe { libc::mkfifo(name.as_ptr(), 0o600) };
    assert_eq!(made, 0);
    let good = lab.path("good.ndjson");
    std::fs::write(&good, ndjson(1..=4)).unwrap();
    let mut child = lab.command(&[&fifo, &good], &[]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the loader blocked on a FIFO for 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let run = Run::from(child.wait_with_output().unwrap());
    assert_ne!(run.code, Some(0), "{run:#?}");
    let error = run.summary["per_file"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("a FIFO") && error.contains("not a regular file"),
        "{error}"
    );
    assert_eq!(run.summary["per_file"][1]["ok"], true, "{:#}", run.summary);
    assert_eq!(lab.counts(), (4, 4));
}

#[test]
fn control_characters_in_a_file_name_do_not_forge_log_lines() {
    let lab = Lab::new();
    let file = lab.path("x\nERROR forged line\u{1b}[2K.ndjson");
    with_a_bad_record(&file);
    let run = lab.load(&[&file], &["--on-error", "abort"]);
    assert_ne!(run.code, Some(0), "{run:#?}");
    assert!(
        run.stderr
            .contains("x\\nERROR forged line\\u{1b}[2K.ndjson"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.lines().any(|l| l.starts_with("ERROR forged")),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains('\u{1b}'), "{}", run.stderr);
}

#[test]
fn ctrl_c_ends_a_load_of_standard_input_with_nothing_coming() {
    use std::io::Write as _;
    let lab = Lab::new();
    let mut cmd = lab.command(&[std::path::Path::new("-")], &[]);
    cmd.current_dir(lab.dir.path())
        .stdin(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // More than one append (1 MiB): the first lands while standard input stays open.
    stdin.write_all(ndjson(1..=40_000).as_bytes()).unwrap();
    stdin.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while lab.counts().0 == 0 {
        assert!(Instant::now() < deadline, "no row landed in 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(child.id(), Signal::Int).expect("signal the child");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("Ctrl-C did not end the load in 30 s while standard input stayed open");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(stdin);
    let run = Run::from(child.wait_with_output().unwrap());
    assert_eq!(run.code, Some(1), "{run:#?}");
    let error = run.summary["per_file"][0]["error"].as_str().unwrap();
    assert!(error.contains("interrupted"), "{error}");
}
