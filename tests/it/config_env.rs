//! `ClientBuilder::from_env`. The variables are set in a child process, not in this one,
//! which every integration test shares.

use crate::common::*;
use snowpipe_streaming::ClientBuilder;

#[tokio::test]
async fn from_env_reads_the_snowflake_variables() {
    // Arrange
    let sf = MockAccount::start().await;
    let vars = [
        ("SNOWFLAKE_ACCOUNT", "myorg-myacct".to_owned()),
        ("SNOWFLAKE_USER", "env_user".to_owned()),
        ("SNOWFLAKE_URL", sf.url()),
        (
            "SNOWFLAKE_PRIVATE_KEY_FILE",
            fixture("test_key_encrypted.p8").display().to_string(),
        ),
        (
            "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE",
            TEST_PASSPHRASE.to_owned(),
        ),
        ("SNOWFLAKE_ROLE", "ENV_ROLE".to_owned()),
    ];
    // Act
    run_test_in_child(
        "config_env::from_env_child",
        &vars,
        &["SNOWFLAKE_PRIVATE_KEY"],
    )
    .await;

    // Assert
    let claims = verify_jwt(&bearer(&sf.requests_to("/oauth/token").await[0]));
    assert_eq!(claims["sub"], "MYORG-MYACCT.ENV_USER");
    assert_eq!(claims["scp"], "session:role:ENV_ROLE");
}

/// The client side of [`from_env_reads_the_snowflake_variables`], in a child process with
/// the variables set.
#[tokio::test]
#[ignore = "a child process of from_env_reads_the_snowflake_variables"]
async fn from_env_child() {
    if !in_child() {
        return;
    }
    ClientBuilder::from_env()
        .retry(fast_retry())
        .build()
        .await
        .unwrap();
}
