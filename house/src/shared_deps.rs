//! Every crate two or more packages use is a `[workspace.dependencies]` entry of the root
//! manifest, and each package takes it with `workspace = true`: one version (and one default
//! features setting) in one place. Read line by line: each dependency of our manifests is one
//! line, `name = "1"`, `name = { ... }` or `name.workspace = true`.

use std::collections::BTreeMap;
use std::path::Path;

/// How one package names one dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Taken {
    /// `workspace = true`.
    Inherited,
    /// With a version or path of its own.
    Own,
}

/// The dependencies a manifest's text names, in every dependency table, with how it takes
/// each; the package's dependency on itself (a dev-dependency with features) is left out.
fn dependencies(manifest: &str) -> Vec<(String, Taken)> {
    let mut package = None;
    let mut section = String::new();
    let mut out = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if section == "package" && key == "name" {
            package = Some(value.trim().trim_matches('"').to_owned());
        }
        let table = section.rsplit('.').next().unwrap_or_default();
        let deps = matches!(
            table,
            "dependencies" | "dev-dependencies" | "build-dependencies"
        );
        if !deps || section.starts_with("workspace") || line.starts_with('#') {
            continue;
        }
        let (name, inherited) = match key.strip_suffix(".workspace") {
            Some(name) => (name, true),
            None => (key, value.replace(' ', "").contains("workspace=true")),
        };
        if package.as_deref() == Some(name) {
            continue;
        }
        let taken = if inherited {
            Taken::Inherited
        } else {
            Taken::Own
        };
        out.push((name.to_owned(), taken));
    }
    out
}

/// What breaks the rule in `manifests` (each package's folder and manifest text): a crate that
/// two or more packages use, taken with a version of its own somewhere.
fn breaks(manifests: &[(&str, &str)]) -> Vec<String> {
    let mut users: BTreeMap<String, Vec<(&str, Taken)>> = BTreeMap::new();
    for (package, text) in manifests {
        for (name, taken) in dependencies(text) {
            users.entry(name).or_default().push((package, taken));
        }
    }
    let mut out = Vec::new();
    for (name, uses) in users {
        let mut packages: Vec<&str> = uses.iter().map(|u| u.0).collect();
        packages.dedup();
        if packages.len() < 2 {
            continue;
        }
        for (package, taken) in uses {
            if taken == Taken::Own {
                out.push(format!(
                    "{package}/Cargo.toml takes {name} with a version of its own, but {} \
                     packages use it: put it in the root's [workspace.dependencies] and write \
                     `{name} = {{ workspace = true, features = [...] }}`",
                    packages.len()
                ));
            }
        }
    }
    out.dedup();
    out
}

/// Checks the workspace at `root` (its `Cargo.toml` and each member's).
///
/// # Panics
/// When a crate two or more packages use is not taken from `[workspace.dependencies]`, naming
/// the manifest, the crate and the fix.
pub fn check_workspace(root: &str) {
    let root = Path::new(root);
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
    let texts: Vec<(String, String)> = crate::walk::members(root)
        .into_iter()
        .map(|m| {
            let text = read(&root.join(&m).join("Cargo.toml"));
            (m, text)
        })
        .collect();
    let manifests: Vec<(&str, &str)> = texts.iter().map(|(m, t)| (&**m, &**t)).collect();
    let found = breaks(&manifests);
    assert!(
        found.is_empty(),
        "shared crates come from [workspace.dependencies]:\n{}",
        found.join("\n")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_crate_with_a_version_of_its_own_is_found() {
        let a = "[package]\nname = \"a\"\n[dependencies]\nserde = { workspace = true }\n\
                 tokio.workspace = true\nonly_a = \"1\"\n[dev-dependencies]\n\
                 a = { path = \".\", features = [\"x\"] }\n";
        let b = "[package]\nname = \"b\"\n[target.'cfg(unix)'.dependencies]\n\
                 serde = { workspace = true, features = [\"derive\"] }\n\
                 [dev-dependencies]\ntokio = { version = \"1\", features = [\"full\"] }\n\
                 a = { workspace = true }\n";
        assert_eq!(
            breaks(&[("a", a), ("b", b)]),
            [
                "b/Cargo.toml takes tokio with a version of its own, but 2 packages use it: put \
              it in the root's [workspace.dependencies] and write `tokio = { workspace = true, \
              features = [...] }`"
            ]
        );
    }

    #[test]
    fn this_workspace_keeps_the_rule() {
        check_workspace(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    }
}
