//! `ALTER USER <name> SET RSA_PUBLIC_KEY = '<key>' [RSA_PUBLIC_KEY_2 = '<key>']`: the key
//! registration step of Snowflake's key-pair authentication guide. The catalog records each
//! key with its user ([`super::Catalog::user_keys`]); the service registers them with the
//! authenticator, so a setup script written for Snowflake works here as it is.
//!
//! `DEFAULT_ROLE = <role>` in `ALTER USER <name> SET …` or `CREATE USER <name> …` records the
//! user's default role ([`super::Catalog::default_role`]): the role of a request whose
//! token names none (docs/protocol-types-and-sql.md "Table features").
//!
//! The key is what Snowflake takes: the base64 body of the PEM public key, without the
//! `-----BEGIN PUBLIC KEY-----` lines (a full PEM is accepted too). User names fold to upper
//! case unless quoted, as every unquoted identifier does.

use sqlparser::tokenizer::Token;

/// A public key registered for one user by DDL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserKey {
    /// The user, as Snowflake stores the name.
    pub user: String,
    /// The key as PEM.
    pub pem: String,
    /// The user's key slot: 1 for `RSA_PUBLIC_KEY`, 2 for `RSA_PUBLIC_KEY_2` (setting a slot
    /// again replaces its key; `UNSET` empties it).
    pub slot: u8,
}

fn word(t: Option<&Token>) -> Option<String> {
    match t {
        Some(Token::Word(w)) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    }
}

/// `Some` when `tokens` are an `ALTER USER … SET` statement that sets a public key: its
/// keys, or why it cannot be read. `None` for every other statement (other `ALTER USER`
/// settings are not modelled and stay ignored).
pub(super) fn parse(tokens: &[Token]) -> Option<Result<Vec<UserKey>, String>> {
    let (user, at) = altered_user(tokens)?;
    if word(tokens.get(at))? != "SET" {
        return None;
    }
    let mut keys = Vec::new();
    let mut j = at + 1;
    while j < tokens.len() {
        let name = word(tokens.get(j));
        let is_key = matches!(name.as_deref(), Some("RSA_PUBLIC_KEY" | "RSA_PUBLIC_KEY_2"));
        if is_key {
            if !matches!(tokens.get(j + 1), Some(Token::Eq)) {
                return Some(Err(format!(
                    "ALTER USER {user} SET {}: expected `= '<key>'`",
                    name.unwrap_or_default()
                )));
            }
            let Some(Token::SingleQuotedString(key)) = tokens.get(j + 2) else {
                return Some(Err(format!(
                    "ALTER USER {user} SET {}: the key must be a quoted string",
                    name.unwrap_or_default()
                )));
            };
            keys.push(UserKey {
                user: user.clone(),
                pem: to_pem(key),
                slot: if name.as_deref() == Some("RSA_PUBLIC_KEY_2") {
                    2
                } else {
                    1
                },
            });
            j += 3;
        } else {
            j += 1;
        }
    }
    if keys.is_empty() {
        None
    } else {
        Some(Ok(keys))
    }
}

/// The user an `ALTER USER [IF EXISTS] <name>` statement names and the index of the token
/// after the name; `None` for any other statement.
fn altered_user(tokens: &[Token]) -> Option<(String, usize)> {
    if word(tokens.first())? != "ALTER" || word(tokens.get(1))? != "USER" {
        return None;
    }
    let mut i = 2;
    if word(tokens.get(i)).as_deref() == Some("IF") {
        i += 2; // IF EXISTS
    }
    let user = match tokens.get(i)? {
        Token::Word(w) if w.quote_style.is_some() => w.value.clone(),
        Token::Word(w) => w.value.to_ascii_uppercase(),
        _ => return None,
    };
    Some((user, i + 1))
}

/// `Some((user, slots))` when `tokens` are `ALTER USER <name> UNSET RSA_PUBLIC_KEY[_2] [, …]`:
/// the key slots (1, 2) it empties. `None` for every other statement (an `UNSET` of other
/// properties only is not modelled).
pub(super) fn parse_unset(tokens: &[Token]) -> Option<(String, Vec<u8>)> {
    let (user, at) = altered_user(tokens)?;
    if word(tokens.get(at))? != "UNSET" {
        return None;
    }
    let slots: Vec<u8> = tokens[at + 1..]
        .iter()
        .filter_map(|t| match word(Some(t)).as_deref() {
            Some("RSA_PUBLIC_KEY") => Some(1),
            Some("RSA_PUBLIC_KEY_2") => Some(2),
            _ => None,
        })
        .collect();
    (!slots.is_empty()).then_some((user, slots))
}

/// `GRANT ROLE <role> TO USER <user>` (granted: `true`) or `REVOKE ROLE <role> FROM USER
/// <user>` (`false`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RoleGrant {
    pub role: String,
    pub user: String,
    pub granted: bool,
}

/// `Some` when `tokens` are `GRANT ROLE <role> TO USER <user>` or `REVOKE ROLE <role> FROM
/// USER <user>`, or why it cannot be read; `None` for every other statement (a role granted
/// to a role is not modelled).
pub(super) fn parse_role_grant(tokens: &[Token]) -> Option<Result<RoleGrant, String>> {
    let first = word(tokens.first())?;
    let granted = match first.as_str() {
        "GRANT" => true,
        "REVOKE" => false,
        _ => return None,
    };
    if word(tokens.get(1))? != "ROLE" {
        return None;
    }
    let name = |t: Option<&Token>| match t {
        Some(Token::Word(w)) if w.quote_style.is_some() => Some(w.value.clone()),
        Some(Token::Word(w)) => Some(w.value.to_ascii_uppercase()),
        _ => None,
    };
    let role = name(tokens.get(2))?;
    let to = if granted { "TO" } else { "FROM" };
    if word(tokens.get(3)).as_deref() != Some(to) || word(tokens.get(4)).as_deref() != Some("USER")
    {
        return None;
    }
    Some(match name(tokens.get(5)) {
        Some(user) => Ok(RoleGrant {
            role,
            user,
            granted,
        }),
        None => Err(format!(
            "{first} ROLE {role} {to} USER: expected a user name"
        )),
    })
}

/// `Some((user, role))` when `tokens` are an `ALTER USER … SET` or `CREATE USER` statement
/// that sets `DEFAULT_ROLE`, or why it cannot be read; `None` for every other statement.
pub(super) fn parse_default_role(tokens: &[Token]) -> Option<Result<(String, String), String>> {
    let first = word(tokens.first())?;
    let mut i = 1;
    if first == "CREATE" && word(tokens.get(i)).as_deref() == Some("OR") {
        i += 2; // OR REPLACE
    }
    if !matches!(first.as_str(), "ALTER" | "CREATE") || word(tokens.get(i))? != "USER" {
        return None;
    }
    i += 1;
    if matches!(word(tokens.get(i)).as_deref(), Some("IF")) {
        i += if first == "ALTER" { 2 } else { 3 }; // IF EXISTS / IF NOT EXISTS
    }
    let user = match tokens.get(i)? {
        Token::Word(w) if w.quote_style.is_some() => w.value.clone(),
        Token::Word(w) => w.value.to_ascii_uppercase(),
        _ => return None,
    };
    let at =
        (i + 1..tokens.len()).find(|&j| word(tokens.get(j)).as_deref() == Some("DEFAULT_ROLE"))?;
    if !matches!(tokens.get(at + 1), Some(Token::Eq)) {
        return Some(Err(format!(
            "{first} USER {user} … DEFAULT_ROLE: expected `= <role>`"
        )));
    }
    let role = match tokens.get(at + 2) {
        Some(Token::Word(w)) if w.quote_style.is_some() => w.value.clone(),
        Some(Token::Word(w)) => w.value.to_ascii_uppercase(),
        Some(Token::SingleQuotedString(s)) => s.clone(),
        _ => {
            return Some(Err(format!(
                "{first} USER {user} … DEFAULT_ROLE: expected a role name"
            )))
        }
    };
    Some(Ok((user, role)))
}

/// The key as PEM: as it is when it already has its BEGIN/END lines, else the base64 body
/// (whitespace removed) wrapped at 64 columns.
fn to_pem(key: &str) -> String {
    if key.contains("BEGIN PUBLIC KEY") {
        return key.trim().to_owned() + "\n";
    }
    let body: String = key.chars().filter(|c| !c.is_whitespace()).collect();
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    pem
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::script::split_statements;

    fn keys(sql: &str) -> Option<Result<Vec<UserKey>, String>> {
        parse(&split_statements(sql).unwrap()[0].tokens)
    }

    #[test]
    fn default_roles_are_read_from_alter_and_create_user() {
        let role = |sql: &str| parse_default_role(&split_statements(sql).unwrap()[0].tokens);
        assert_eq!(
            role("ALTER USER bob SET DEFAULT_ROLE = loader"),
            Some(Ok(("BOB".into(), "LOADER".into())))
        );
        assert_eq!(
            role("ALTER USER IF EXISTS \"bob\" SET COMMENT = 'x' DEFAULT_ROLE = \"Mixed\""),
            Some(Ok(("bob".into(), "Mixed".into())))
        );
        assert_eq!(
            role("CREATE OR REPLACE USER IF NOT EXISTS ann TYPE = SERVICE DEFAULT_ROLE = 'R1'"),
            Some(Ok(("ANN".into(), "R1".into())))
        );
        assert_eq!(role("ALTER USER bob SET DEFAULT_WAREHOUSE = w"), None);
        assert_eq!(role("CREATE ROLE loader"), None);
        assert!(matches!(
            role("ALTER USER bob SET DEFAULT_ROLE loader"),
            Some(Err(_))
        ));
    }

    #[test]
    fn alter_user_set_rsa_public_key_is_read() {
        let body = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA".repeat(3);
        let k = keys(&format!(
            "ALTER USER streaming_ingest SET RSA_PUBLIC_KEY='{body}' COMMENT = 'x'"
        ))
        .unwrap()
        .unwrap();
        assert_eq!(k.len(), 1);
        assert_eq!(k[0].user, "STREAMING_INGEST");
        assert!(k[0].pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert!(k[0].pem.lines().all(|l| l.len() <= 64));
        let two = keys(&format!(
            "alter user if exists \"Mixed\" set rsa_public_key = '{body}' rsa_public_key_2 = '{body}'"
        ))
        .unwrap()
        .unwrap();
        assert_eq!(two.len(), 2);
        assert_eq!(two[1].user, "Mixed");
        assert_eq!((two[0].slot, two[1].slot), (1, 2));
        assert!(keys("ALTER USER u SET DEFAULT_ROLE = R").is_none());
        assert!(keys("ALTER TABLE t SET COMMENT = 'x'").is_none());
        let bad = keys("ALTER USER u SET RSA_PUBLIC_KEY = 42")
            .unwrap()
            .unwrap_err();
        assert!(bad.contains("quoted string"), "{bad}");
    }

    #[test]
    fn unset_keys_and_role_grants_are_read() {
        let tokens = |sql: &str| split_statements(sql).unwrap().remove(0).tokens;
        assert_eq!(
            parse_unset(&tokens("ALTER USER bob UNSET RSA_PUBLIC_KEY")),
            Some(("BOB".into(), vec![1]))
        );
        assert_eq!(
            parse_unset(&tokens(
                "alter user if exists \"Mixed\" unset rsa_public_key_2, rsa_public_key"
            )),
            Some(("Mixed".into(), vec![2, 1]))
        );
        assert_eq!(parse_unset(&tokens("ALTER USER bob UNSET COMMENT")), None);
        assert_eq!(
            parse_role_grant(&tokens("GRANT ROLE analyst TO USER bob")),
            Some(Ok(RoleGrant {
                role: "ANALYST".into(),
                user: "BOB".into(),
                granted: true
            }))
        );
        assert_eq!(
            parse_role_grant(&tokens("revoke role \"r\" from user \"b\"")),
            Some(Ok(RoleGrant {
                role: "r".into(),
                user: "b".into(),
                granted: false
            }))
        );
        // A role granted to a role, and privileges, are not modelled.
        assert_eq!(parse_role_grant(&tokens("GRANT ROLE a TO ROLE b")), None);
        assert_eq!(
            parse_role_grant(&tokens("GRANT USAGE ON DATABASE d TO ROLE r")),
            None
        );
        assert!(matches!(
            parse_role_grant(&tokens("GRANT ROLE a TO USER 42")),
            Some(Err(_))
        ));
    }
}
