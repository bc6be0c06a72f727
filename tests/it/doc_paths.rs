//! Every file path the Markdown pages quote exists, so a page cannot go on pointing at a file
//! that moved: the check `house/src/paths.rs` (whose module docs say what counts as a quoted
//! path and where it is looked for) on the whole repository.

#[test]
fn every_file_path_quoted_in_the_markdown_exists() {
    snowpipe_house::paths::check_paths(std::path::Path::new(env!("CARGO_MANIFEST_DIR")), 100);
}
