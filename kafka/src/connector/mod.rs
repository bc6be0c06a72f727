//! Snowflake's Kafka connector, for users who switch from it: its channel names ([`naming`]), its
//! config files ([`config_file`]), its topic-to-table map ([`topic_table`]), its tables
//! ([`create_tables`]) (its column-name normalization is a row-layout option,
//! `rows::normalize`), its client-side
//! validation and schema evolution ([`table_columns`], capped by [`evolution_caps`]) and the
//! migration of its v3 offsets ([`migrate_v3`]).

pub(crate) mod config_file;
pub(crate) mod create_tables;
pub(crate) mod evolution_caps;
pub(crate) mod migrate_v3;
pub(crate) mod naming;
pub(crate) mod table_columns;
pub(crate) mod topic_table;
