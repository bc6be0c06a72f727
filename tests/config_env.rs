//! `ClientBuilder::from_env`. The only test in this binary, because it sets process-wide
//! environment variables.

mod common;

use common::*;
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
    for (k, v) in &vars {
        std::env::set_var(k, v);
    }
    std::env::remove_var("SNOWFLAKE_PRIVATE_KEY");

    // Act
    let result = ClientBuilder::from_env().retry(fast_retry()).build().await;
    for (k, _) in &vars {
        std::env::remove_var(k);
    }
    result.unwrap();

    // Assert
    let claims = verify_jwt(&bearer(&sf.requests_to("/oauth/token").await[0]));
    assert_eq!(claims["sub"], "MYORG-MYACCT.ENV_USER");
    assert_eq!(claims["scp"], "session:role:ENV_ROLE");
}
