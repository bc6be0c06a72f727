//! `CHANGELOG.md`'s `[Unreleased]` section is the fold of `changelog.d/`, each fragment one
//! short line of a known kind: the check `house/src/changelog.rs` on the whole repository.

#[test]
fn the_unreleased_section_is_the_fold_of_the_changelog_fragments() {
    snowpipe_house::changelog::check(std::path::Path::new(env!("CARGO_MANIFEST_DIR")));
}
