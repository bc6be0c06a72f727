//! Every commit's subject from [`BASE`] on is at most [`MAX_CHARS`] characters: what `git log
//! --oneline`, a review tool and a terminal show whole. The detail goes in the body.
//!
//! History before [`BASE`] (the commit the rule came in on) is left as it is; every commit
//! after it, merge commits included, is read from `git log BASE..HEAD`. Outside a git
//! checkout (a packaged crate), without `git`, or in a clone too shallow to hold [`BASE`], the
//! check says so on stderr and passes: there is no history to read.

use std::path::Path;
use std::process::Command;

/// The most characters a commit's subject may have.
pub const MAX_CHARS: usize = 72;

/// The last commit the rule does not apply to: the merge that brought the last branch
/// written before the check landed (one of its subjects had 73 characters).
pub const BASE: &str = "40e3d40cde45ba30488384e2782a149f7f37bb0d";

/// What is wrong in `commits` (each a hash and its subject): each subject over
/// [`MAX_CHARS`] characters, named with its commit, its length and the fix.
pub fn over<H: AsRef<str>, S: AsRef<str>>(commits: &[(H, S)]) -> Vec<String> {
    commits
        .iter()
        .filter_map(|(hash, subject)| {
            let (hash, subject) = (hash.as_ref(), subject.as_ref());
            let chars = subject.chars().count();
            (chars > MAX_CHARS).then(|| {
                let short = hash.get(..10).unwrap_or(hash);
                format!(
                    "{short} {subject:?}: {chars} characters, more than {MAX_CHARS}: reword it \
                     (git rebase -i, `reword`) and put the detail in the body"
                )
            })
        })
        .collect()
}

/// The commits after `base` up to `HEAD` in the repository at `root`, each its hash and
/// subject.
///
/// # Errors
/// Why there is no history to read: not a git checkout, no `git`, or `base` not in the clone.
pub fn commits_since(root: &Path, base: &str) -> Result<Vec<(String, String)>, String> {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .map_err(|e| format!("git cannot be run ({e})"))
    };
    let inside = git(&["rev-parse", "--is-inside-work-tree"])?;
    if !inside.status.success() {
        return Err(format!("{} is not a git checkout", root.display()));
    }
    let has_base = git(&["cat-file", "-e", &format!("{base}^{{commit}}")])?;
    if !has_base.status.success() {
        return Err(format!(
            "commit {base} is not in this clone (shallow?): fetch the history to check"
        ));
    }
    let log = git(&["log", "--format=%H%x09%s", &format!("{base}..HEAD")])?;
    if !log.status.success() {
        return Err(format!(
            "git log failed: {}",
            String::from_utf8_lossy(&log.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&log.stdout)
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(h, s)| (h.to_owned(), s.to_owned()))
        .collect())
}

/// Checks the commits after [`BASE`] in the repository at `root`; skipped, with a line on
/// stderr, where there is no history to read.
///
/// # Panics
/// With each subject over [`MAX_CHARS`] characters and how to fix it.
pub fn check(root: &Path) {
    match commits_since(root, BASE) {
        Ok(commits) => {
            let found = over(&commits);
            assert!(
                found.is_empty(),
                "commit subjects over {MAX_CHARS} characters:\n{}",
                found.join("\n")
            );
        }
        Err(why) => eprintln!("commit subjects not checked: {why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn a_long_subject_is_named_by_its_commit_and_a_short_one_is_not() {
        let long = "x".repeat(MAX_CHARS + 1);
        let just = "é".repeat(MAX_CHARS);
        let found = over(&[
            ("0123456789abcdef", long.as_str()),
            ("fedcba", just.as_str()),
        ]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("0123456789 \"xxx") && found[0].contains("73 characters"),
            "{found:?}"
        );
    }

    /// A scratch repository: a base commit, then one with `subject`.
    fn repo(name: &str, subject: &str) -> Option<(PathBuf, String)> {
        let dir =
            std::env::temp_dir().join(format!("house-subjects-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).ok()?;
        let git = |args: &[&str]| {
            Command::new("git")
                .arg("-C")
                .arg(&dir)
                .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
                .args(args)
                .output()
                .ok()
                .filter(|o| o.status.success())
        };
        git(&["init", "-q"])?;
        git(&["commit", "-q", "--allow-empty", "-m", &"old ".repeat(30)])?;
        let base = git(&["rev-parse", "HEAD"])?;
        git(&[
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            subject,
            "-m",
            "the body",
        ])?;
        let base = String::from_utf8_lossy(&base.stdout).trim().to_owned();
        Some((dir, base))
    }

    #[test]
    fn only_the_commits_after_the_base_are_read() {
        let long = format!("subject {}", "y".repeat(MAX_CHARS));
        let Some((dir, base)) = repo("long", &long) else {
            eprintln!("no git: skipped");
            return;
        };
        let commits = commits_since(&dir, &base).unwrap();
        assert_eq!(commits.len(), 1, "{commits:?}");
        assert_eq!(commits[0].1, long);
        assert_eq!(over(&commits).len(), 1);
        let missing = commits_since(&dir, &"0".repeat(40)).unwrap_err();
        assert!(missing.contains("not in this clone"), "{missing}");
        let _ = std::fs::remove_dir_all(&dir);
        let outside = std::env::temp_dir().join(format!("house-no-git-{}", std::process::id()));
        std::fs::create_dir_all(&outside).unwrap();
        let why = commits_since(&outside, &base).unwrap_err();
        let _ = std::fs::remove_dir_all(&outside);
        assert!(why.contains("not a git checkout"), "{why}");
    }

    #[test]
    fn this_repository_keeps_the_rule() {
        check(Path::new(env!("CARGO_MANIFEST_DIR")));
    }
}
