//! Testing your own pipeline offline: the emulator inside a `#[tokio::test]`.
//!
//! ```text
//! cargo test --example emulator_in_tests
//! ```
//!
//! `load_orders` stands for your code. It takes a `ClientBuilder`, so production passes one
//! for the real account and the test one for the emulator. The test checks what a user
//! cares about: every order lands once, also when the pipeline runs a second time (a restart
//! resumes after the channel's committed offset token).

use snowpipe_streaming::{Positions, Rows};
use std::time::Duration;

use serde::Serialize;
use snowpipe_streaming::{ClientBuilder, OffsetToken};

/// One order; field names match the table's columns.
#[derive(Serialize)]
struct Order {
    id: u64,
    customer: String,
}

/// Your pipeline: streams the orders into `SHOP.SALES.ORDERS`, the order id as offset token,
/// skipping what an earlier run committed.
///
/// # Errors
/// When connecting, appending or committing fails.
async fn load_orders(builder: ClientBuilder, orders: &[Order]) -> snowpipe_streaming::Result<()> {
    let client = builder.build().await?;
    let channel = client
        .table_pipe("SHOP", "SALES", "ORDERS")
        .open_channel("orders")
        .await?;
    let done: Option<u64> = channel
        .latest_committed_offset_token()
        .and_then(|t| t.as_str().parse().ok());
    let todo: Vec<&Order> = orders
        .iter()
        .filter(|o| done.is_none_or(|d| o.id > d))
        .collect();
    if let (Some(first), Some(last)) = (todo.first(), todo.last()) {
        channel
            .append(
                Rows::serde(&todo),
                Positions::span(first.id.into()..=last.id.into()),
            )
            .await?;
        let last = OffsetToken::from(last.id);
        channel
            .wait_for_commit(&last, Duration::from_secs(60))
            .await?;
    }
    channel.close().await?;
    client.close().await
}

/// Orders `1..=n`.
fn orders(n: u64) -> Vec<Order> {
    (1..=n)
        .map(|id| Order {
            id,
            customer: format!("customer {}", id % 7),
        })
        .collect()
}

/// Production: the same pipeline into a real account (`SNOWFLAKE_*`), when one is configured.
#[tokio::main]
async fn main() -> snowpipe_streaming::Result<()> {
    if std::env::var_os("SNOWFLAKE_ACCOUNT").is_none() {
        println!("run the test: cargo test --example emulator_in_tests");
        return Ok(());
    }
    load_orders(ClientBuilder::from_env(), &orders(100)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use snowpipe_streaming::emulator::Emulator;

    const DDL: &str = "CREATE DATABASE SHOP; CREATE SCHEMA SHOP.SALES;
        CREATE TABLE SHOP.SALES.ORDERS (ID NUMBER, CUSTOMER VARCHAR);";

    #[tokio::test]
    async fn every_order_lands_once_also_when_the_pipeline_runs_again() {
        let emulator = Emulator::start(DDL).await.unwrap();
        let orders = orders(100);

        load_orders(emulator.client_builder(), &orders[..60])
            .await
            .unwrap();
        load_orders(emulator.client_builder(), &orders)
            .await
            .unwrap();

        let counts = emulator
            .query("SELECT COUNT(*), COUNT(DISTINCT ID) FROM \"SHOP.SALES.ORDERS\"")
            .unwrap();
        assert_eq!(counts[0], [json!(100), json!(100)]);
        emulator.shutdown().await;
    }
}
