//! Issue 82 item 5 (opt-in with the container test, `SNOWPIPE_CONTAINER_TEST=1`): every shared
//! library in the image has its Debian package's copyright file at
//! `/usr/share/doc/<package>/copyright`, as `kafka/docs/image.md` says. The package of a
//! library is the one `dpkg -S` names on the machine that built the image (the script takes
//! the packages from there); libgcc-s1's doc folder is a link into gcc-12-base's, the case the
//! build once skipped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{image_or_skip, podman, podman_ok, Container};

/// The Debian package owning `path` on this machine (merged /usr: `/lib/…` is `/usr/lib/…`).
fn owner(path: &str) -> Option<String> {
    let alt = path
        .strip_prefix("/usr")
        .map_or_else(|| format!("/usr{path}"), str::to_owned);
    [path.to_owned(), alt].iter().find_map(|p| {
        let out = Command::new("dpkg").args(["-S", p]).output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().find(|l| !l.starts_with("diversion"))?;
        // "libc6:amd64: /lib/x86_64-linux-gnu/libc.so.6"; "a, b: path": the first.
        let pkg = line.split(": ").next()?.split(", ").next()?;
        Some(pkg.split(':').next()?.to_owned())
    })
}

/// Every shared library under `root` (a file named `*.so` or `*.so.*`), as the image's path.
fn libraries(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read a folder of the image") {
            let path = entry.expect("an entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("metadata");
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if meta.is_dir() {
                dirs.push(path);
            } else if meta.is_file() && (name.ends_with(".so") || name.contains(".so.")) {
                let inside = path.strip_prefix(root).expect("under the root");
                found.push(format!("/{}", inside.display()));
            }
        }
    }
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shared_library_in_the_image_has_its_packages_copyright() {
    let Some(image) = image_or_skip() else {
        return;
    };
    let name = format!("snowpipe-kafka-licences-{}", std::process::id());
    podman_ok(&["create", "--name", &name, &image]).await;
    let _container = Container(name.clone());
    let dir = tempfile::tempdir().expect("a folder");
    let tar = dir.path().join("image.tar");
    let out = podman(
        vec![
            "export".into(),
            "-o".into(),
            tar.display().to_string(),
            name,
        ],
        Vec::new(),
        Duration::from_secs(120),
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root: PathBuf = dir.path().join("root");
    std::fs::create_dir(&root).expect("root");
    let untar = Command::new("tar")
        .args([
            "-xf",
            &tar.display().to_string(),
            "-C",
            &root.display().to_string(),
        ])
        .status()
        .expect("tar");
    assert!(untar.success());

    let libs = libraries(&root);
    assert!(
        libs.iter().any(|l| l.contains("libc.so")),
        "no libc in the image: {libs:?}"
    );
    let mut missing = Vec::new();
    for lib in &libs {
        let pkg = owner(lib).unwrap_or_else(|| panic!("no Debian package owns {lib} here"));
        let copyright = root.join(format!("usr/share/doc/{pkg}/copyright"));
        match std::fs::symlink_metadata(&copyright) {
            Ok(m) if m.is_file() && m.len() > 0 => {}
            _ => missing.push(format!("{lib} ({pkg})")),
        }
    }
    assert!(
        missing.is_empty(),
        "libraries without their licence: {missing:?}"
    );
    eprintln!(
        "{} libraries, each with its package's copyright",
        libs.len()
    );
}
