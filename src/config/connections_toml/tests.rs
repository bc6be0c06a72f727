//! Unit tests of `connections.toml`: keys, sections, the default connection, discovery,
//! permissions and errors (files in temporary directories; the environment is a map).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use super::*;
use crate::auth::ControlAuth;
use crate::test_support::TEST_KEY;

/// A temporary directory holding `files` (name, text), each mode 0600.
fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        write_private(&dir.path().join(name), text);
    }
    dir
}

fn write_private(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// An environment of `vars`.
fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |k: &str| map.get(k).cloned()
}

fn from_file(path: &Path, name: Option<&str>, vars: &[(&str, &str)]) -> Result<ClientBuilder> {
    ClientBuilder::connections_file_with(path, name, &env(vars))
}

fn message(e: Error) -> String {
    match e {
        Error::Config {
            setting, message, ..
        } => format!("{setting}: {message}"),
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn a_key_pair_connection_maps_onto_the_builder() {
    let dir = tempfile::tempdir().unwrap();
    write_private(&dir.path().join("keys/rsa_key.p8"), TEST_KEY);
    let home = dir.path().to_str().unwrap();
    let toml = r#"
[ingest]
account = "myorg-myaccount"
user = "SNOWPIPE_INGEST"
role = "SNOWPIPE_INGEST_ROLE"
authenticator = "SNOWFLAKE_JWT"
private_key_file = "~/keys/rsa_key.p8"
private_key_file_pwd = ""
warehouse = "COMPUTE_WH"
database = "INGEST_DB"
schema = "PUBLIC"
session_parameters = { QUERY_TAG = "x" }
max_client_lag = "250ms"
some_future_key = "skipped"
"#;
    let path = dir.path().join("connections.toml");
    write_private(&path, toml);
    let b = from_file(&path, Some("ingest"), &[("HOME", home)]).unwrap();
    assert_eq!(b.account.as_deref(), Some("myorg-myaccount"));
    assert_eq!(b.credentials.user.as_deref(), Some("SNOWPIPE_INGEST"));
    assert_eq!(b.role.as_deref(), Some("SNOWPIPE_INGEST_ROLE"));
    assert_eq!(
        b.credentials.private_key_file.as_deref(),
        Some(dir.path().join("keys/rsa_key.p8").as_path())
    );
    assert_eq!(
        b.credentials.authorization_type,
        Some(AuthorizationType::KeyPair)
    );
    assert_eq!(b.channel.max_client_lag, Duration::from_millis(250));
    // An empty private_key_file_pwd is no passphrase: the variable's, if it is set.
    assert!(b.credentials.private_key_passphrase.is_none());
    let with_var = from_file(
        &path,
        Some("ingest"),
        &[
            ("HOME", home),
            ("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE", "from-env"),
        ],
    )
    .unwrap();
    assert_eq!(
        with_var
            .credentials
            .private_key_passphrase
            .as_ref()
            .map(|p| p.expose().to_owned())
            .as_deref(),
        Some("from-env")
    );
    let r = b.resolve().unwrap();
    assert_eq!(
        r.connect.account_url.as_str(),
        "https://myorg-myaccount.snowflakecomputing.com/"
    );
    assert_eq!(r.connect.role.as_deref(), Some("SNOWPIPE_INGEST_ROLE"));
    assert!(matches!(r.connect.control, ControlAuth::KeyPair(_)));
}

#[test]
fn host_port_and_protocol_make_the_url_and_protocol_alone_keeps_the_account_host() {
    let dir = dir_with(&[(
        "connections.toml",
        r#"
[emulator]
account = "EMULATOR"
user = "ME"
host = "127.0.0.1"
port = 8080
protocol = "http"
private_key = """
PRIVATE_KEY_PLACEHOLDER"""

[gateway]
account = "xy12345.us-east-2.aws"
user = "ME"
port = 8443
"#,
    )]);
    let text = std::fs::read_to_string(dir.path().join("connections.toml"))
        .unwrap()
        .replace("PRIVATE_KEY_PLACEHOLDER", TEST_KEY);
    write_private(&dir.path().join("connections.toml"), &text);
    let path = dir.path().join("connections.toml");
    let b = from_file(&path, Some("emulator"), &[]).unwrap();
    assert_eq!(
        b.resolve().unwrap().connect.account_url.as_str(),
        "http://127.0.0.1:8080/"
    );
    let b = from_file(&path, Some("gateway"), &[])
        .unwrap()
        .private_key_pem(TEST_KEY);
    assert_eq!(
        b.resolve().unwrap().connect.account_url.as_str(),
        "https://xy12345.us-east-2.aws.snowflakecomputing.com:8443/"
    );
}

#[test]
fn the_default_connection_is_chosen_as_snowflakes_tools_choose_it() {
    let sections = r#"
[default]
account = "FROM_DEFAULT"
[other]
account = "FROM_OTHER"
[third]
account = "FROM_THIRD"
"#;
    let dir = dir_with(&[("connections.toml", sections)]);
    let path = dir.path().join("connections.toml");
    let account = |b: ClientBuilder| b.account.unwrap();
    // No name anywhere: `default`.
    assert_eq!(
        account(from_file(&path, None, &[]).unwrap()),
        "FROM_DEFAULT"
    );
    // The environment variable.
    let vars = [("SNOWFLAKE_DEFAULT_CONNECTION_NAME", "other")];
    assert_eq!(
        account(from_file(&path, None, &vars).unwrap()),
        "FROM_OTHER"
    );
    // A name asked for wins over the variable.
    assert_eq!(
        account(from_file(&path, Some("third"), &vars).unwrap()),
        "FROM_THIRD"
    );
    // The file's own default_connection_name, below the variable.
    let named = format!("default_connection_name = \"third\"\n{sections}");
    write_private(&path, &named);
    assert_eq!(account(from_file(&path, None, &[]).unwrap()), "FROM_THIRD");
    assert_eq!(
        account(from_file(&path, None, &vars).unwrap()),
        "FROM_OTHER"
    );
}

#[test]
fn a_missing_section_names_the_ones_that_exist_and_why_it_was_wanted() {
    let dir = dir_with(&[(
        "connections.toml",
        "[prod]\naccount = \"A\"\n[dev]\naccount = \"B\"\n",
    )]);
    let path = dir.path().join("connections.toml");
    let e = message(from_file(&path, None, &[]).unwrap_err());
    assert!(
        e.contains("no connection \"default\"")
            && e.contains("its connections are dev, prod")
            && e.contains("neither SNOWFLAKE_DEFAULT_CONNECTION_NAME nor default_connection_name"),
        "{e}"
    );
    let e = message(
        from_file(
            &path,
            None,
            &[("SNOWFLAKE_DEFAULT_CONNECTION_NAME", "staging")],
        )
        .unwrap_err(),
    );
    assert!(
        e.contains("\"staging\"") && e.contains("from SNOWFLAKE_DEFAULT_CONNECTION_NAME"),
        "{e}"
    );
    let e = message(from_file(&path, Some("qa"), &[]).unwrap_err());
    assert!(e.contains("\"qa\" (asked for)"), "{e}");
    let empty = dir_with(&[("connections.toml", "")]);
    let e = message(from_file(&empty.path().join("connections.toml"), Some("x"), &[]).unwrap_err());
    assert!(e.contains("it defines no connection"), "{e}");
}

#[test]
fn authenticators_this_client_cannot_use_are_refused_naming_the_supported_ones() {
    for (section, expected) in [
        (
            "authenticator = \"externalbrowser\"",
            "authenticator EXTERNALBROWSER is not supported",
        ),
        (
            "authenticator = \"oauth\"\ntoken = \"a-secret-access-token\"",
            "use OAUTH_CLIENT_CREDENTIALS",
        ),
        (
            "password = \"a-secret-password\"",
            "passwords are not accepted",
        ),
        (
            "authenticator = \"snowflake\"\npassword = \"a-secret-password\"",
            "programmatic access token used as a password goes in token",
        ),
    ] {
        let dir = dir_with(&[(
            "connections.toml",
            &format!("[c]\naccount = \"A\"\nuser = \"U\"\n{section}\n"),
        )]);
        let e =
            message(from_file(&dir.path().join("connections.toml"), Some("c"), &[]).unwrap_err());
        assert!(e.contains(expected), "{section}: {e}");
        assert!(
            e.contains("SNOWFLAKE_JWT")
                && e.contains("PROGRAMMATIC_ACCESS_TOKEN")
                && e.contains("OAUTH_CLIENT_CREDENTIALS"),
            "{e}"
        );
        assert!(!e.contains("a-secret"), "a secret reached the error: {e}");
    }
}

#[test]
fn a_programmatic_access_token_comes_from_token_or_token_file_path() {
    let dir = dir_with(&[
        (
            "connections.toml",
            r#"
[inline]
account = "A"
authenticator = "PROGRAMMATIC_ACCESS_TOKEN"
token = "pat-inline"
[implied]
account = "A"
token = "pat-implied"
[file]
account = "A"
authenticator = "programmatic_access_token"
token_file_path = "~/pat.txt"
[none]
account = "A"
authenticator = "PROGRAMMATIC_ACCESS_TOKEN"
"#,
        ),
        ("pat.txt", "pat-from-file\n"),
    ]);
    let path = dir.path().join("connections.toml");
    let vars = [("HOME", dir.path().to_str().unwrap())];
    for (name, token) in [
        ("inline", "pat-inline"),
        ("implied", "pat-implied"),
        ("file", "pat-from-file"),
    ] {
        let b = from_file(&path, Some(name), &vars).unwrap();
        assert_eq!(
            b.credentials
                .personal_access_token
                .as_ref()
                .map(|t| t.expose().to_owned())
                .as_deref(),
            Some(token),
            "{name}"
        );
        assert!(!format!("{b:?}").contains(token), "Debug shows the token");
        assert!(matches!(
            b.resolve().unwrap().connect.control,
            ControlAuth::Pat(_)
        ));
    }
    let e = message(from_file(&path, Some("none"), &vars).unwrap_err());
    assert!(
        e.starts_with("token: ") && e.contains("token_file_path"),
        "{e}"
    );
}

#[test]
fn oauth_client_credentials_map_onto_the_oauth_client() {
    let dir = dir_with(&[(
        "connections.toml",
        r#"
[oauth]
account = "myorg-myaccount"
authenticator = "OAUTH_CLIENT_CREDENTIALS"
oauth_client_id = "client"
oauth_client_secret = "secret"
oauth_token_request_url = "https://idp.example.com/token"
oauth_scope = "session:role:LOADER"
"#,
    )]);
    let b = from_file(&dir.path().join("connections.toml"), Some("oauth"), &[]).unwrap();
    assert_eq!(
        b.credentials.authorization_type,
        Some(AuthorizationType::OAuth)
    );
    assert_eq!(b.credentials.oauth_client_id.as_deref(), Some("client"));
    assert_eq!(
        b.credentials.oauth_token_endpoint.as_deref(),
        Some("https://idp.example.com/token")
    );
    assert_eq!(
        b.credentials.oauth_scope.as_deref(),
        Some("session:role:LOADER")
    );
    assert!(matches!(
        b.resolve().unwrap().connect.control,
        ControlAuth::OAuth(_)
    ));
}

#[test]
fn a_toml_error_names_the_line_never_its_text_and_a_bad_value_names_its_section() {
    let dir = dir_with(&[(
        "connections.toml",
        "[c]\naccount = \"A\"\ntoken = \"s3cr3t-token\" oops\n",
    )]);
    let e = message(from_file(&dir.path().join("connections.toml"), Some("c"), &[]).unwrap_err());
    assert!(e.contains("is not valid TOML at line 3"), "{e}");
    assert!(
        !e.contains("s3cr3t"),
        "the line's text reached the error: {e}"
    );
    let dir = dir_with(&[(
        "connections.toml",
        "[c]\naccount = \"A\"\nport = \"eighty\"\n",
    )]);
    let path = dir.path().join("connections.toml");
    // The port is checked where the URL is made.
    let e = message(
        from_file(&path, Some("c"), &[])
            .unwrap()
            .private_key_pem(TEST_KEY)
            .user("U")
            .resolve()
            .unwrap_err(),
    );
    assert!(e.contains("host") || e.contains("port"), "{e}");
    let dir = dir_with(&[(
        "connections.toml",
        "[c]\naccount = \"A\"\nmax_client_lag = \"soon\"\nroles = [1]\n",
    )]);
    let e = message(from_file(&dir.path().join("connections.toml"), Some("c"), &[]).unwrap_err());
    assert!(
        e.starts_with("max_client_lag: in [c] of ") || e.starts_with("roles: in [c] of "),
        "{e}"
    );
}

#[cfg(unix)]
#[test]
fn a_file_others_may_write_is_refused_and_one_they_may_read_is_read() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = dir_with(&[("connections.toml", "[default]\naccount = \"A\"\n")]);
    let path = dir.path().join("connections.toml");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let e = message(from_file(&path, None, &[]).unwrap_err());
    assert!(
        e.contains("can be written by other users (mode 666)") && e.contains("chmod 0600"),
        "{e}"
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(
        from_file(&path, None, &[]).unwrap().account.as_deref(),
        Some("A")
    );
}

#[test]
fn a_config_toml_keeps_its_connections_under_connections() {
    let dir = dir_with(&[(
        "config.toml",
        r#"
default_connection_name = "main"
[connections.main]
account = "FROM_CONFIG"
[cli.logs]
save_logs = true
"#,
    )]);
    let b = from_file(&dir.path().join("config.toml"), None, &[]).unwrap();
    assert_eq!(b.account.as_deref(), Some("FROM_CONFIG"));
}

#[test]
fn a_profile_file_ending_in_toml_is_a_connections_toml() {
    let dir = dir_with(&[(
        "snowflake.toml",
        "[default]\naccount = \"A\"\nuser = \"U\"\nauthenticator = \"SNOWFLAKE_JWT\"\n",
    )]);
    let b = ClientBuilder::from_profile_file(dir.path().join("snowflake.toml")).unwrap();
    assert_eq!(b.account.as_deref(), Some("A"));
    let e = message(ClientBuilder::from_profile_file(dir.path().join("missing.toml")).unwrap_err());
    assert!(e.contains("missing.toml"), "{e}");
}

// The paths are Linux's (macOS and Windows have their own directories).
#[cfg(all(unix, not(target_os = "macos")))]
#[test]
fn the_file_is_found_where_snowflakes_tools_look() {
    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("home");
    let xdg = root.path().join("xdg");
    std::fs::create_dir_all(&home).unwrap();
    let h = home.to_str().unwrap();
    let x = xdg.to_str().unwrap();
    let find = |name: Option<&str>, vars: &[(&str, &str)]| {
        ClientBuilder::discovered_connection_with(name, &env(vars)).map(|b| b.account.unwrap())
    };

    // Nothing anywhere: every path looked at is named.
    let e = message(find(None, &[("HOME", h), ("XDG_CONFIG_HOME", x)]).unwrap_err());
    assert!(
        e.contains(&format!("{h}/.snowflake (does not exist)"))
            && e.contains(&format!("{x}/snowflake/connections.toml"))
            && e.contains(&format!("{x}/snowflake/config.toml")),
        "{e}"
    );

    // The platform directory when ~/.snowflake does not exist; its config.toml's connections.
    write_private(
        &xdg.join("snowflake/config.toml"),
        "default_connection_name = \"b\"\n[connections.a]\naccount = \"CONFIG_A\"\n\
         [connections.b]\naccount = \"CONFIG_B\"\n",
    );
    assert_eq!(
        find(None, &[("HOME", h), ("XDG_CONFIG_HOME", x)]).unwrap(),
        "CONFIG_B"
    );
    // Without XDG_CONFIG_HOME: ~/.config/snowflake.
    write_private(
        &home.join(".config/snowflake/connections.toml"),
        "[default]\naccount = \"DOT_CONFIG\"\n",
    );
    assert_eq!(find(None, &[("HOME", h)]).unwrap(), "DOT_CONFIG");

    // connections.toml beside config.toml replaces its connections; config.toml still names
    // the default.
    write_private(
        &xdg.join("snowflake/connections.toml"),
        "[a]\naccount = \"TOML_A\"\n[b]\naccount = \"TOML_B\"\n",
    );
    assert_eq!(
        find(None, &[("HOME", h), ("XDG_CONFIG_HOME", x)]).unwrap(),
        "TOML_B"
    );
    assert_eq!(
        find(Some("a"), &[("HOME", h), ("XDG_CONFIG_HOME", x)]).unwrap(),
        "TOML_A"
    );

    // ~/.snowflake, once it exists, wins over the platform directory.
    write_private(
        &home.join(".snowflake/connections.toml"),
        "[default]\naccount = \"DOT_SNOWFLAKE\"\n",
    );
    assert_eq!(
        find(None, &[("HOME", h), ("XDG_CONFIG_HOME", x)]).unwrap(),
        "DOT_SNOWFLAKE"
    );

    // SNOWFLAKE_HOME, when it exists, wins over both; when it does not, the platform
    // directory is used (not ~/.snowflake), as Snowflake's connector does.
    let custom = root.path().join("custom");
    write_private(
        &custom.join("connections.toml"),
        "[default]\naccount = \"CUSTOM\"\n",
    );
    let c = custom.to_str().unwrap();
    assert_eq!(
        find(None, &[("HOME", h), ("SNOWFLAKE_HOME", c)]).unwrap(),
        "CUSTOM"
    );
    let gone = root.path().join("gone");
    assert_eq!(
        find(
            None,
            &[
                ("HOME", h),
                ("XDG_CONFIG_HOME", x),
                ("SNOWFLAKE_HOME", gone.to_str().unwrap())
            ]
        )
        .unwrap(),
        "TOML_B"
    );
}
