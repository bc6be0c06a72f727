//! The replica id (`server_id`) `follow` registers with on the source server, and what a
//! collision says.
//!
//! A MariaDB/MySQL server keeps one binlog connection per replica id: a replica that
//! registers with an id already connected makes the server end the older connection
//! (MariaDB's error 4052, "A slave with the same server_uuid/server_id is already connected";
//! MySQL's 1236, "… as this slave has connected to the master"). That is what lets a restarted `follow` replace the connection its killed
//! predecessor left behind; between two running `follow`s it is a fight (each reconnect
//! knocks the other off). So the default id is derived from what makes a pipeline: the
//! server's address, the database and the sorted table list (never the user or password),
//! and a `follow` whose connection another replica took stops, naming `--server-id`,
//! instead of taking it back.

use anyhow::Result;

use crate::table_replay::source;

/// The default replica id of `follow --source URL --table TABLES`: a hash of the address the
/// URL names, its database and the sorted table list (FNV-1a, in `0x4000_0000..0x5000_0000`,
/// away from the small ids servers are usually given). Stable for one pipeline (a restart
/// replaces its killed predecessor's connection), different for pipelines that differ in
/// any of those.
///
/// # Errors
/// For a malformed URL or one without a database (as [`source::opts`]).
pub fn default_server_id(url: &str, tables: &[String]) -> Result<u32> {
    let opts = source::opts(url)?;
    let mut sorted: Vec<&str> = tables.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let db = opts.db_name().unwrap_or_default();
    Ok(hash_id(&source::address(&opts), db, &sorted))
}

/// The id of `(address, database, tables)`: each part length-prefixed, so no two lists hash
/// the same bytes.
fn hash_id(address: &str, database: &str, tables: &[&str]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    let parts = [address, database]
        .into_iter()
        .chain(tables.iter().copied());
    for part in parts {
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX).to_le_bytes();
        for b in len.iter().chain(part.as_bytes()) {
            h = (h ^ u32::from(*b)).wrapping_mul(0x0100_0193);
        }
    }
    0x4000_0000 | (h & 0x0fff_ffff)
}

/// Whether the server's error `text` says another replica registered with this connection's
/// replica id (MariaDB's error 4052 and MySQL's 1236 both say so).
pub(super) fn is_collision(text: &str) -> bool {
    text.to_lowercase().contains("same server_uuid/server_id")
}

/// The error that stops `follow` when another replica took its replica id.
pub(super) fn collision(server_id: u32, text: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "another replica registered with this follow's replica id {server_id}, and the server \
         ended this binlog connection ({text}). Two readers with one id knock each other off: \
         give each follow its own --server-id (unique among the server's replicas; the \
         default is derived from the source address, database and tables). The changes \
         committed so far stay; a restart resumes after them"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(url: &str, tables: &[&str]) -> u32 {
        let tables: Vec<String> = tables.iter().map(|t| (*t).to_owned()).collect();
        default_server_id(url, &tables).unwrap()
    }

    #[test]
    fn the_default_id_differs_by_database_address_and_tables_but_not_password_or_order() {
        let base = id("mysql://u:p@127.0.0.1:3306/shop", &["orders", "items"]);
        assert_ne!(
            base,
            id("mysql://u:p@127.0.0.1:3306/shop2", &["orders", "items"])
        );
        assert_ne!(
            base,
            id("mysql://u:p@127.0.0.1:3307/shop", &["orders", "items"])
        );
        assert_ne!(
            base,
            id("mysql://u:p@10.0.0.1:3306/shop", &["orders", "items"])
        );
        assert_ne!(base, id("mysql://u:p@127.0.0.1:3306/shop", &["orders"]));
        assert_eq!(
            base,
            id("mysql://u:other@127.0.0.1:3306/shop", &["items", "orders"])
        );
        assert_eq!(base & 0xf000_0000, 0x4000_0000);
        // Parts are length-prefixed: moving a character between them changes the id.
        assert_ne!(hash_id("h:1", "ab", &["c"]), hash_id("h:1", "a", &["bc"]));
    }

    #[test]
    fn the_collision_text_is_recognised_and_the_error_names_the_flag() {
        let text = "ERROR 1236 (HY000): A slave with the same server_uuid/server_id as this \
                    slave has connected to the master";
        assert!(is_collision(text));
        assert!(is_collision(
            "ERROR 4052 (HY000): A slave with the same server_uuid/server_id is already \
             connected; the first event 'binlog.000001' at 11810"
        ));
        assert!(!is_collision(
            "Could not find first log file name in binary log index file"
        ));
        let e = collision(7, text).to_string();
        assert!(e.contains("--server-id") && e.contains(" 7"), "{e}");
    }
}
