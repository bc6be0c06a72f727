//! The connector's keys translated into this sink's options ([`ConnectorConfig`]): each key the
//! sink takes becomes its option, the Snowflake connection goes to the client builder
//! ([`Connection`]), and the keys not taken are listed by name.
//!
//! Three parts, each using only the ones before it: `translated` (what is read and made: the
//! file's values as the connector reads them, `Values`, and the `ConnectorConfig`), `linked`
//! (the keys whose meaning depends on other keys, a function per group) and `keys` (the table
//! of the connector's keys, in the shape of its `ConfigDef`: each key's name and how it is read,
//! the groups named by their first key). [`translate`] runs the table's rows in order.

use std::collections::BTreeMap;

use crate::error::Result;

mod keys;
mod linked;
mod translated;

use keys::{is_taken, KEYS};

pub(crate) use translated::Connection;
pub use translated::ConnectorConfig;

/// The connector's keys → this sink's options.
///
/// # Errors
/// A key whose value this sink cannot honour without writing other rows than the connector
/// (e.g. JSON with inline schemas, v3 table-name sanitization with `topics.regex`), or a
/// `snowflake.topic2table.map` the connector refuses too, naming the fix.
pub fn translate(keys: &BTreeMap<String, String>) -> Result<ConnectorConfig> {
    let mut c = ConnectorConfig::default();
    let values = translated::Values(keys);
    for key in KEYS {
        key.read(values, &mut c)?;
    }
    c.ignored = keys.keys().filter(|k| !is_taken(k)).cloned().collect();
    Ok(c)
}
