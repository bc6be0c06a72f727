//! Every flag the docs quote for `snowpipe-kafka` (and its subcommands) is one its `--help`
//! lists: the check shared with the other packages' binaries, `house/src/flags.rs` (which
//! says how a quoted flag is attributed to a binary; its table `PROSE`, in
//! `house/src/flag_tables.rs`, says which READMEs' prose is whose).

snowpipe_house::readme_flags!("snowpipe-kafka");
