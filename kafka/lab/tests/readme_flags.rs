//! Every flag the docs quote for `snowpipe-kafka-lab` (`demo`, `bench`, `soak`) is one its
//! `--help` lists: the check shared with the other packages' binaries, `house/src/flags.rs`.

snowpipe_house::readme_flags!("snowpipe-kafka-lab");
