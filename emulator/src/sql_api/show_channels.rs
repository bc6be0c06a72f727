//! `SHOW CHANNELS [LIKE '<pattern>'] [IN ACCOUNT | DATABASE [<db>] | SCHEMA [<schema>] |
//! TABLE <table> | PIPE <pipe>]`: the channels the role may see, one row each, with
//! Snowflake's documented columns `created_on`, `name`, `database_name`, `schema_name`,
//! `table_name`, `client_sequencer`, `row_sequencer`, `offset_token`, and the 2025_03 bundle's
//! `parent_domain` (`PIPE`) and `parent_name` (the pipe). A client that must count a pipe's
//! channels before it opens another (Snowflake allows 2,000 a pipe, closed ones included)
//! asks this (docs/protocol-types-and-sql.md "SQL API").
//!
//! Without `IN`, the request's database (else the account). Names resolve in the request's
//! database and schema; a pipe written with `-` (`"T-STREAMING"`) must be quoted. Only
//! channels whose database the role may read are listed. The elastic channel is not a named
//! channel and is not listed.

use sqlparser::tokenizer::Token;

use crate::base::api_error::ApiError;
use crate::catalog::Catalog;
use crate::channels::{Channel, ChannelKey, ELASTIC};

use super::describe::Described;
use super::failure::failed;
use super::show_words::{self, Lookup};

const COLUMNS: [&str; 10] = [
    "created_on",
    "name",
    "database_name",
    "schema_name",
    "table_name",
    "client_sequencer",
    "row_sequencer",
    "offset_token",
    "parent_domain",
    "parent_name",
];

/// Which channels a `SHOW CHANNELS` lists (names as stored).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scope {
    Account,
    Database(String),
    Schema(String, String),
    /// A table: the channels of every pipe loading into it.
    Table(String, String, String),
    Pipe(String, String, String),
}

/// A parsed `SHOW CHANNELS`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ShowChannels {
    like: Option<String>,
    scope: Scope,
}

/// Reads `SHOW CHANNELS …` (`None` for any other statement).
///
/// # Errors
/// 422 `001003` for a form this does not read (naming those it reads), `002003` for a
/// database, schema, table or pipe that does not exist or the role may not read.
pub(crate) fn parse(statement: &str, at: &Lookup<'_>) -> Result<Option<ShowChannels>, ApiError> {
    let Some(words) = show_words::show(statement, "CHANNELS") else {
        return Ok(None);
    };
    let unread = || {
        show_words::unread(
            "SHOW CHANNELS [LIKE '<pattern>'] [IN ACCOUNT | DATABASE [<db>] | SCHEMA [<schema>] \
             | TABLE <table> | PIPE <pipe>]",
        )
    };
    let (like, rest) = show_words::like(&words);
    let scope = match rest {
        [] => match at.database {
            Some(db) => Scope::Database(super::identifier(db)),
            None => Scope::Account,
        },
        [i, kind, name @ ..] if show_words::keyword(i, "IN") => {
            let name = match name {
                [] => None,
                name => Some(object(name).ok_or_else(unread)?),
            };
            scope(kind, name, at.database, at.schema).ok_or_else(unread)?
        }
        _ => return Err(unread()),
    };
    check_exists(at, &scope)?;
    Ok(Some(ShowChannels { like, scope }))
}

/// The dotted name `tokens` hold, whole.
fn object(tokens: &[Token]) -> Option<Vec<String>> {
    let tokens: Vec<&Token> = tokens.iter().collect();
    let (parts, taken) = super::ddl::object_name(&tokens)?;
    (taken == tokens.len()).then_some(parts)
}

/// The scope `IN <kind> [<name>]` names, with the request's database and schema filled in.
fn scope(
    kind: &Token,
    name: Option<Vec<String>>,
    database: Option<&str>,
    schema: Option<&str>,
) -> Option<Scope> {
    let kw = show_words::keyword;
    let db = || database.map(super::identifier);
    let sch = || schema.map(super::identifier);
    let three = |name: Vec<String>| -> Option<(String, String, String)> {
        match name.as_slice() {
            [t] => Some((db()?, sch()?, t.clone())),
            [s, t] => Some((db()?, s.clone(), t.clone())),
            [d, s, t] => Some((d.clone(), s.clone(), t.clone())),
            _ => None,
        }
    };
    Some(match (name, kind) {
        (None, k) if kw(k, "ACCOUNT") => Scope::Account,
        (None, k) if kw(k, "DATABASE") => Scope::Database(db()?),
        (Some(n), k) if kw(k, "DATABASE") && n.len() == 1 => Scope::Database(n[0].clone()),
        (None, k) if kw(k, "SCHEMA") => Scope::Schema(db()?, sch()?),
        (Some(n), k) if kw(k, "SCHEMA") => match n.as_slice() {
            [s] => Scope::Schema(db()?, s.clone()),
            [d, s] => Scope::Schema(d.clone(), s.clone()),
            _ => return None,
        },
        (Some(n), k) if kw(k, "TABLE") => {
            let (d, s, t) = three(n)?;
            Scope::Table(d, s, t)
        }
        (Some(n), k) if kw(k, "PIPE") => {
            let (d, s, p) = three(n)?;
            Scope::Pipe(d, s, p)
        }
        _ => return None,
    })
}

/// `002003` unless the scope's object exists and the role may read its database.
fn check_exists(at: &Lookup<'_>, scope: &Scope) -> Result<(), ApiError> {
    let (catalog, granted) = (at.catalog, |db: &str| at.may_read(db));
    let missing = |what: &str, name: String| {
        failed(
            "002003",
            "02000",
            format!("SQL compilation error:\n{what} '{name}' does not exist or not authorized."),
        )
    };
    match scope {
        Scope::Account => Ok(()),
        Scope::Database(d) if granted(d) && catalog.tables().any(|t| &t.database == d) => Ok(()),
        Scope::Database(d) => Err(missing("Database", d.clone())),
        Scope::Schema(d, s)
            if granted(d) && catalog.tables().any(|t| &t.database == d && &t.schema == s) =>
        {
            Ok(())
        }
        Scope::Schema(d, s) => Err(missing("Schema", format!("{d}.{s}"))),
        Scope::Table(d, s, t) if granted(d) && catalog.table_exact(d, s, t).is_some() => Ok(()),
        Scope::Table(d, s, t) => Err(missing("Table", format!("{d}.{s}.{t}"))),
        Scope::Pipe(d, s, p) if granted(d) && catalog.resolve_pipe(d, s, p).is_ok() => Ok(()),
        Scope::Pipe(d, s, p) => Err(missing("Pipe", format!("{d}.{s}.{p}"))),
    }
}

impl ShowChannels {
    /// The rows: the named channels in scope that match the pattern and whose database the
    /// role may read, sorted by database, schema, pipe and name.
    pub(crate) fn rows<'c>(
        &self,
        catalog: &Catalog,
        channels: impl Iterator<Item = (&'c ChannelKey, &'c Channel)>,
        granted: &dyn Fn(&str) -> bool,
    ) -> Described {
        let mut rows: Vec<Vec<String>> = Vec::new();
        for (key, ch) in channels {
            if key.channel == ELASTIC || !granted(&key.database) {
                continue;
            }
            let table = catalog
                .resolve_pipe(&key.database, &key.schema, &key.pipe)
                .map(|r| r.table.name.clone())
                .unwrap_or_default();
            let in_scope = match &self.scope {
                Scope::Account => true,
                Scope::Database(d) => &key.database == d,
                Scope::Schema(d, s) => &key.database == d && &key.schema == s,
                Scope::Table(d, s, t) => &key.database == d && &key.schema == s && &table == t,
                Scope::Pipe(d, s, p) => {
                    &key.database == d && &key.schema == s && key.pipe.eq_ignore_ascii_case(p)
                }
            };
            let named = self
                .like
                .as_deref()
                .is_none_or(|p| super::like::like(p, &key.channel));
            if !(in_scope && named) {
                continue;
            }
            let created = chrono::DateTime::from_timestamp_millis(ch.created_on_ms)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f %z").to_string())
                .unwrap_or_default();
            rows.push(vec![
                created,
                key.channel.clone(),
                key.database.clone(),
                key.schema.clone(),
                table,
                ch.client_seq.to_string(),
                ch.row_seq.to_string(),
                ch.committed.clone().unwrap_or_default(),
                "PIPE".to_owned(),
                key.pipe.clone(),
            ]);
        }
        rows.sort_by(|a, b| (&a[2], &a[3], &a[9], &a[1]).cmp(&(&b[2], &b[3], &b[9], &b[1])));
        Described {
            columns: &COLUMNS,
            rows,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        let mut c = Catalog::new();
        c.apply_sql(
            "CREATE DATABASE D; CREATE SCHEMA D.S; CREATE TABLE D.S.T (A INT); \
             CREATE TABLE D.S.U (A INT); CREATE DATABASE E; CREATE SCHEMA E.S; \
             CREATE TABLE E.S.T (A INT);",
        )
        .unwrap();
        c
    }

    /// Where the request looks: database `D`, schema `S`.
    fn at<'a>(c: &'a Catalog, granted: &'a dyn Fn(&str) -> bool) -> Lookup<'a> {
        Lookup::new(c, Some("D"), Some("S"), granted)
    }

    fn key(db: &str, pipe: &str, name: &str) -> ChannelKey {
        ChannelKey {
            database: db.into(),
            schema: "S".into(),
            pipe: pipe.into(),
            channel: name.into(),
        }
    }

    #[test]
    fn channels_are_listed_by_scope_pattern_and_grant() {
        let c = catalog();
        let all = |_: &str| true;
        let chans = [
            (key("D", "T-STREAMING", "shard_k1"), Channel::new(0)),
            (key("D", "T-STREAMING", "shard_k2"), Channel::new(0)),
            (key("D", "T-STREAMING", "other"), Channel::new(0)),
            (key("D", "T-STREAMING", ELASTIC), Channel::new(0)),
            (key("D", "U-STREAMING", "shard_k3"), Channel::new(0)),
            (key("E", "T-STREAMING", "shard_k4"), Channel::new(0)),
        ];
        let list = |sql: &str, granted: &dyn Fn(&str) -> bool| -> Vec<String> {
            let show = parse(sql, &at(&c, granted)).unwrap().unwrap();
            show.rows(&c, chans.iter().map(|(k, v)| (k, v)), granted)
                .rows
                .into_iter()
                .map(|r| format!("{}.{}:{}", r[2], r[9], r[1]))
                .collect()
        };
        assert_eq!(
            list(
                "show channels like 'shard\\_k%' in pipe \"T-STREAMING\"",
                &all
            ),
            ["D.T-STREAMING:shard_k1", "D.T-STREAMING:shard_k2"]
        );
        assert_eq!(
            list("SHOW CHANNELS IN TABLE U", &all),
            ["D.U-STREAMING:shard_k3"]
        );
        assert_eq!(
            list("SHOW CHANNELS", &all).len(),
            4,
            "the request's database"
        );
        assert_eq!(list("SHOW CHANNELS IN ACCOUNT", &all).len(), 5);
        let only_d = |d: &str| d == "D";
        assert_eq!(list("SHOW CHANNELS IN ACCOUNT", &only_d).len(), 4);
        // A pipe that does not exist, or of a database not granted: 002003.
        for sql in [
            "SHOW CHANNELS IN PIPE \"NOPE-STREAMING\"",
            "SHOW CHANNELS IN DATABASE E",
        ] {
            let err = parse(sql, &at(&c, &only_d)).unwrap_err();
            assert!(format!("{err:?}").contains("002003"), "{sql}: {err:?}");
        }
        let err = parse("SHOW CHANNELS IN WAREHOUSE W", &at(&c, &all)).unwrap_err();
        assert!(format!("{err:?}").contains("001003"), "{err:?}");
        assert!(parse("SHOW TABLES", &at(&c, &all)).unwrap().is_none());
    }
}
