//! What the service's unit tests share: one table, `DB.SCH.T (ID NUMBER)`, and a channel
//! opened on its default pipe.

use std::sync::Arc;

use super::Shared;
use crate::channels::{ChannelKey, Target};

/// The catalog of the tests: `DB.SCH.T (ID NUMBER)`.
pub(super) const DDL: &str = "CREATE DATABASE DB; CREATE SCHEMA SCH; CREATE TABLE T (ID NUMBER);";

/// Opens channel `c` on `T`'s default pipe: its key, its target and its continuation token.
pub(super) async fn open_c(shared: &Shared) -> (ChannelKey, Arc<Target>, String) {
    let (key, target) = shared.resolve("DB", "SCH", "T-STREAMING", "c").unwrap();
    let opened = shared.open_channel(key.clone(), None, false).await.unwrap();
    let token = opened["next_continuation_token"]
        .as_str()
        .unwrap()
        .to_owned();
    (key, target, token)
}
