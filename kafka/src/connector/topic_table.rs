//! Which pipe a topic's rows go to, decided when a partition of the topic is assigned (a topic
//! that `--topic-regex` finds at run time has no pipe until then).
//!
//! The rules, in order ([`Routes::pipe_of`]):
//! 1. a topic listed with `--topic` (or `--topic-map`) goes to its `--pipe`;
//! 2. `--topic2table-map` (the Kafka connector's `snowflake.topic2table.map`): the table's
//!    default pipe, `<TABLE>-STREAMING`;
//! 3. a single `--pipe` takes every other topic;
//! 4. otherwise the connector's default: the topic itself as a quoted table, so the pipe is
//!    `"<topic>-STREAMING"`.
//!
//! The map follows the connector's own parser and resolvers (`snowflakedb/snowflake-kafka-connector`,
//! `src/main/java/com/snowflake/kafka/connector/TopicToTableParser.java`,
//! `StaticTopicToTableResolver.java`, `RegexTopicToTableResolver.java`):
//! - `topic:table[,topic:table…]`; a token may be `"quoted"` (then it may hold `,` `:` and
//!   spaces); quotes around a topic are dropped; a quoted table keeps its case, an unquoted one
//!   is upper-cased;
//! - every topic is a regex matched against the whole topic name; a topic given twice, or two
//!   topics where either one's text matches the other's regex ("overlapping"), are refused;
//! - without `regex.replacement` the table is taken as written: an exact topic wins, then the
//!   regexes in order;
//! - with `snowflake.topic2table.map.regex.replacement=true` the table is a template in Java's
//!   `Matcher.replaceFirst` syntax (`$1`…, `${name}`, `\` escapes the next character),
//!   expanded with the first matching entry in order, and upper-cased after substitution
//!   unless quoted.
//!
//! Regexes are Rust's `regex` dialect, which reads the usual Java patterns; lookaround and
//! backreferences are refused at start, naming the topic.

use regex::Regex;
use snowpipe_streaming::default_pipe_name;

use crate::error::{err, fail, Context, Error, Result};

/// `regex` matched against a whole topic name (`^(?:regex)$`; a leading `^` or trailing `$`
/// given by the user is kept out of the group, so both forms mean the same).
fn whole(regex: &str) -> String {
    let r = regex.strip_prefix('^').unwrap_or(regex);
    let r = match r.strip_suffix('$') {
        Some(s) if !s.ends_with('\\') => s,
        _ => r,
    };
    format!("^(?:{r})$")
}

/// `--topic-regex REGEX` as librdkafka subscribes to it: a subscription starting with `^` is a
/// pattern, read by the C library's POSIX extended `regcomp` (so no `(?:…)`), and searched, so
/// it is anchored at both ends to match whole names, as Kafka Connect's `topics.regex` does.
pub(crate) fn subscription_pattern(regex: &str) -> String {
    let inner = whole(regex);
    format!("^({})$", &inner[4..inner.len() - 2])
}

/// `--topic-regex REGEX`, compiled to test topic names here (e.g. the dead-letter topic), and
/// checked as librdkafka will compile it.
///
/// # Errors
/// A regex that does not compile, in either dialect, naming it.
pub(crate) fn topic_regex(regex: &str) -> Result<Regex> {
    // This sink's own compiler first: it refuses a pattern that expands past
    // [`REGEX_SIZE_LIMIT`] before glibc's `regcomp` (whose memory grows with the expansion:
    // `^(a{1,255}){1,255}$` took 165 MB there, nested counts gigabytes) sees it.
    let compiled = small_regex(&whole(regex)).with_context(Error::Config, || {
        format!(
            "--topic-regex {regex:?} is not a regex this sink reads (lookaround and \
             backreferences are not supported, nor counted repetitions that expand past \
             {} KiB)",
            REGEX_SIZE_LIMIT >> 10
        )
    })?;
    posix_check(&subscription_pattern(regex)).map_err(|why| {
        err!(
            Config,
            "--topic-regex {regex:?} is not POSIX extended syntax, which librdkafka reads \
             ({why}): write e.g. ^orders\\..* or ^(orders|returns)$"
        )
    })?;
    Ok(compiled)
}

/// The most memory one topic regex may compile to (a topic regex is a few alternatives and
/// wildcards; 256 KiB holds thousands of states).
const REGEX_SIZE_LIMIT: usize = 256 << 10;

/// The most entries a topic2table map may have (each topic is checked against the others).
const MAX_MAP_ENTRIES: usize = 1_000;

/// `pattern` compiled within [`REGEX_SIZE_LIMIT`].
fn small_regex(pattern: &str) -> std::result::Result<Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
}

/// Compiles `pattern` as librdkafka does on Linux (`regcomp(REG_EXTENDED | REG_NOSUB)`,
/// librdkafka's `src/rdregex.c`).
#[cfg(target_os = "linux")]
#[allow(
    unsafe_code,
    reason = "librdkafka's regex is libc's regcomp, checked through it"
)]
fn posix_check(pattern: &str) -> std::result::Result<(), String> {
    let c = std::ffi::CString::new(pattern).map_err(|_| "a NUL byte".to_owned())?;
    // SAFETY: `re` is written by regcomp before it is read, freed once when compiled; the
    // pattern is a valid C string for the call's duration; regerror writes at most `buf.len()`.
    unsafe {
        let mut re: libc::regex_t = std::mem::zeroed();
        let r = libc::regcomp(&mut re, c.as_ptr(), libc::REG_EXTENDED | libc::REG_NOSUB);
        if r == 0 {
            libc::regfree(&mut re);
            return Ok(());
        }
        let mut buf = [0u8; 256];
        libc::regerror(r, &re, buf.as_mut_ptr().cast(), buf.len());
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        Err(String::from_utf8_lossy(&buf[..end]).into_owned())
    }
}

/// Elsewhere the subscription reports a pattern librdkafka cannot compile.
#[cfg(not(target_os = "linux"))]
fn posix_check(_pattern: &str) -> std::result::Result<(), String> {
    Ok(())
}

/// One `topic:table` entry of the map.
#[derive(Debug, Clone)]
struct Entry {
    /// As written, quotes removed.
    topic: String,
    /// `topic`, matching whole names.
    pattern: Regex,
    /// As written, quotes removed (a template with regex replacement).
    table: String,
    /// A quoted table keeps its case.
    quoted: bool,
    /// The table template (regex replacement only).
    template: Vec<Piece>,
}

/// A piece of a table template.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Group(usize),
    Named(String),
}

/// `--topic2table-map` / `snowflake.topic2table.map`, parsed and checked.
#[derive(Debug, Clone)]
pub struct TopicTableMap {
    entries: Vec<Entry>,
    replacement: bool,
}

const FORMAT: &str = "write <topic>:<table>[,<topic>:<table>...] (quote a table to keep its case)";

impl TopicTableMap {
    /// Parses `text`; `replacement`: tables are templates (`regex.replacement=true`).
    ///
    /// # Errors
    /// Not `topic:table` pairs (the position named), a topic that is not a regex this sink
    /// reads, a topic given twice, overlapping topics, a template naming a group the topic
    /// does not have.
    pub fn parse(text: &str, replacement: bool) -> Result<Self> {
        let mut entries: Vec<Entry> = Vec::new();
        for (topic, (table, quoted)) in tokens(text)? {
            if entries.len() == MAX_MAP_ENTRIES {
                fail!(
                    Config,
                    "the topic2table map has more than {MAX_MAP_ENTRIES} entries: use a regex \
                     topic (with regex.replacement) for families of topics"
                );
            }
            if entries.iter().any(|e| e.topic == topic) {
                fail!(
                    Config,
                    "the topic2table map names topic {topic} twice: give it once"
                );
            }
            let pattern =
                small_regex(&format!("^(?:{topic})$")).with_context(Error::Config, || {
                    format!(
                        "the topic2table map's topic {topic:?} is not a regex this sink reads \
                     (lookaround and backreferences are not supported, nor counted \
                     repetitions that expand past {} KiB)",
                        REGEX_SIZE_LIMIT >> 10
                    )
                })?;
            if let Some(other) = entries
                .iter()
                .find(|e| e.pattern.is_match(&topic) || pattern.is_match(&e.topic))
            {
                fail!(
                    Config,
                    "the topic2table map's topics {} and {topic} overlap (one matches the \
                     other): a topic must match one entry; make the regexes disjoint",
                    other.topic
                );
            }
            let template = if replacement {
                template(&table, &pattern).with_context(Error::Config, || {
                    format!("the topic2table map's table {table:?} (topic {topic})")
                })?
            } else {
                Vec::new()
            };
            entries.push(Entry {
                topic,
                pattern,
                table,
                quoted,
                template,
            });
        }
        Ok(Self {
            entries,
            replacement,
        })
    }

    /// The table of `topic` (`NAME`, or `"Name"` when quoted), if an entry matches.
    ///
    /// # Errors
    /// A template that gives an empty name for this topic.
    pub fn table_of(&self, topic: &str) -> Result<Option<String>> {
        let (entry, name) = if self.replacement {
            let Some((entry, caps)) = self
                .entries
                .iter()
                .find_map(|e| e.pattern.captures(topic).map(|c| (e, c)))
            else {
                return Ok(None);
            };
            let mut name = String::new();
            for piece in &entry.template {
                match piece {
                    Piece::Text(t) => name.push_str(t),
                    Piece::Group(i) => name.push_str(caps.get(*i).map_or("", |m| m.as_str())),
                    Piece::Named(n) => name.push_str(caps.name(n).map_or("", |m| m.as_str())),
                }
            }
            (entry, name)
        } else {
            let exact = self.entries.iter().find(|e| e.topic == topic);
            let Some(entry) =
                exact.or_else(|| self.entries.iter().find(|e| e.pattern.is_match(topic)))
            else {
                return Ok(None);
            };
            (entry, entry.table.clone())
        };
        if name.is_empty() {
            fail!(
                Config,
                "topic {topic}: the topic2table map's table {:?} gives an empty name",
                entry.table
            );
        }
        Ok(Some(if entry.quoted {
            format!("\"{name}\"")
        } else {
            crate::connector::naming::fold_unquoted(&name)
        }))
    }
}

/// `topic:table` pairs, as the connector's `TopicToTableParser` reads them (the table with
/// whether it was quoted).
fn tokens(text: &str) -> Result<Vec<(String, (String, bool))>> {
    let chars: Vec<char> = text.chars().collect();
    let mut at = 0;
    let mut out = Vec::new();
    let skip = |at: &mut usize| {
        while *at < chars.len() && chars[*at].is_whitespace() {
            *at += 1;
        }
    };
    let error = |what: &str, at: usize| {
        err!(
            Config,
            "the topic2table map {text:?}: {what} at position {at}; {FORMAT}"
        )
    };
    let token = |at: &mut usize| -> Result<(String, bool)> {
        if *at >= chars.len() {
            return Err(error("a topic or table expected, found the end", *at));
        }
        if chars[*at] == '"' {
            let start = *at + 1;
            let Some(len) = chars[start..].iter().position(|c| *c == '"') else {
                return Err(error("an unterminated quote", *at));
            };
            if len == 0 {
                return Err(error("an empty quoted name", *at));
            }
            *at = start + len + 1;
            return Ok((chars[start..start + len].iter().collect(), true));
        }
        let start = *at;
        while *at < chars.len()
            && !chars[*at].is_whitespace()
            && !matches!(chars[*at], ':' | ',' | '"')
        {
            *at += 1;
        }
        if *at == start {
            return Err(error("a topic or table expected", *at));
        }
        Ok((chars[start..*at].iter().collect(), false))
    };
    loop {
        skip(&mut at);
        if at >= chars.len() {
            return Ok(out);
        }
        let (topic, _) = token(&mut at)?;
        skip(&mut at);
        if chars.get(at) != Some(&':') {
            return Err(error("':' expected", at));
        }
        at += 1;
        skip(&mut at);
        let table = token(&mut at)?;
        out.push((topic, table));
        skip(&mut at);
        if at >= chars.len() {
            return Ok(out);
        }
        if chars[at] != ',' {
            return Err(error("',' expected", at));
        }
        at += 1;
    }
}

/// A table template in Java's `Matcher.appendReplacement` syntax, checked against `pattern`'s
/// groups: `\x` is `x`; `${name}` a named group; `$n` a group, taking further digits while
/// the number stays a group of `pattern` (Java's rule).
fn template(table: &str, pattern: &Regex) -> Result<Vec<Piece>> {
    // `captures_len` counts group 0 (the whole match).
    let groups = pattern.captures_len() - 1;
    let chars: Vec<char> = table.chars().collect();
    let mut out = Vec::new();
    let mut text = String::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                let Some(c) = chars.get(i + 1) else {
                    fail!(
                        Config,
                        "a trailing `\\` escapes nothing: write `\\\\` for a backslash"
                    );
                };
                text.push(*c);
                i += 2;
            }
            '$' => {
                if !text.is_empty() {
                    out.push(Piece::Text(std::mem::take(&mut text)));
                }
                i += 1;
                match chars.get(i) {
                    Some('{') => {
                        let start = i + 1;
                        let len = chars[start..]
                            .iter()
                            .position(|c| !c.is_ascii_alphanumeric())
                            .unwrap_or(chars.len() - start);
                        let name: String = chars[start..start + len].iter().collect();
                        if name.is_empty() || chars.get(start + len) != Some(&'}') {
                            fail!(Config, "`${{` starts a group name: write ${{name}}");
                        }
                        if !pattern.capture_names().flatten().any(|n| n == name) {
                            fail!(Config, "the topic regex has no group named {name}");
                        }
                        out.push(Piece::Named(name));
                        i = start + len + 1;
                    }
                    Some(c) if c.is_ascii_digit() => {
                        let mut n = c.to_digit(10).unwrap_or(0) as usize;
                        i += 1;
                        while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
                            let more = n * 10 + d as usize;
                            if more > groups {
                                break;
                            }
                            n = more;
                            i += 1;
                        }
                        if n > groups {
                            fail!(Config, "${n}: the topic regex has {groups} group(s)");
                        }
                        out.push(Piece::Group(n));
                    }
                    _ => {
                        fail!(
                        Config,
                        "`$` must be followed by a group number or {{name}}: write `\\$` for a \
                         dollar sign"
                    )
                    }
                }
            }
            c => {
                text.push(c);
                i += 1;
            }
        }
    }
    if !text.is_empty() {
        out.push(Piece::Text(text));
    }
    Ok(out)
}

/// Every rule that gives a topic its pipe (see the module documentation).
#[derive(Debug, Clone, Default)]
pub struct Routes {
    /// Listed topics and their pipes.
    listed: Vec<(String, String)>,
    /// A single `--pipe`.
    one_pipe: Option<String>,
    map: Option<TopicTableMap>,
}

impl Routes {
    /// `topics` with `pipes` (one per topic, or one for all, or none), then `map`.
    pub fn new(topics: &[String], pipes: &[String], map: Option<TopicTableMap>) -> Self {
        let one_pipe = (pipes.len() == 1).then(|| pipes[0].clone());
        let listed = if let Some(p) = &one_pipe {
            topics.iter().map(|t| (t.clone(), p.clone())).collect()
        } else if pipes.len() == topics.len() {
            topics.iter().cloned().zip(pipes.iter().cloned()).collect()
        } else {
            Vec::new()
        };
        Self {
            listed,
            one_pipe,
            map,
        }
    }

    /// The pipe of `topic`.
    ///
    /// # Errors
    /// A map template that gives an empty table name for `topic`.
    pub fn pipe_of(&self, topic: &str) -> Result<String> {
        if let Some((_, pipe)) = self.listed.iter().find(|(t, _)| t == topic) {
            return Ok(pipe.clone());
        }
        if let Some(map) = &self.map {
            if let Some(table) = map.table_of(topic)? {
                return Ok(default_pipe_name(&table));
            }
        }
        if let Some(pipe) = &self.one_pipe {
            return Ok(pipe.clone());
        }
        Ok(default_pipe_name(&format!("\"{topic}\"")))
    }
}

#[cfg(test)]
mod tests {

    /// Issue 56: a regex whose counted repetitions expand to hundreds of thousands of states
    /// is refused by this sink's compiler before glibc's `regcomp` takes memory for it
    /// (`^(a{1,255}){1,255}$`: 165 MB there); a map of more than 1,000 entries is refused.
    #[test]
    fn regexes_that_expand_past_the_limit_and_huge_maps_are_refused() {
        for hostile in ["(a{1,255}){1,255}", "((a{1,100}){1,100}){1,100}"] {
            let e = format!("{:#}", topic_regex(hostile).unwrap_err());
            assert!(e.contains("expand past 256 KiB"), "{e}");
        }
        // A map's topics have no commas (its separator).
        for hostile in ["(a{255}){255}", "((a{100}){100}){100}"] {
            let e = format!(
                "{:#}",
                TopicTableMap::parse(&format!("{hostile}:T"), false).unwrap_err()
            );
            assert!(e.contains("expand past 256 KiB"), "{e}");
        }
        assert!(topic_regex("^(orders|returns)\\..*$").is_ok());
        let map: Vec<String> = (0..1_001).map(|i| format!("t{i}:T{i}")).collect();
        let e = format!(
            "{:#}",
            TopicTableMap::parse(&map.join(","), false).unwrap_err()
        );
        assert!(e.contains("more than 1000 entries"), "{e}");
        assert!(TopicTableMap::parse(&map[..1_000].join(","), false).is_ok());
    }
    use super::*;

    fn table(map: &str, replacement: bool, topic: &str) -> Result<Option<String>> {
        TopicTableMap::parse(map, replacement)?.table_of(topic)
    }

    /// The connector's resolution, case by case: (map, replacement, topic, table).
    #[test]
    fn topics_resolve_to_tables_as_the_connector_resolves_them() {
        let cases: &[(&str, bool, &str, Option<&str>)] = &[
            ("orders:events", false, "orders", Some("EVENTS")),
            ("orders:\"Events\"", false, "orders", Some("\"Events\"")),
            (" orders : events , clicks:c ", false, "clicks", Some("C")),
            ("\"orders\":events", false, "orders", Some("EVENTS")),
            ("orders:events", false, "returns", None),
            ("orders:events", false, "orders2", None),
            // Regex topics match whole names.
            (
                "orders\\..*:all_orders",
                false,
                "orders.eu",
                Some("ALL_ORDERS"),
            ),
            ("orders\\..*:all_orders", false, "xorders.eu", None),
            // A topic is a regex: `.` matches any character (as in the connector).
            ("a.b:t", false, "axb", Some("T")),
            ("a.b:t,c:u", false, "a.b", Some("T")),
            // Without replacement, `$1` is text.
            ("orders_(.*):t_$1", false, "orders_eu", Some("T_$1")),
            // With replacement: groups, named groups, escapes; case rules after substitution.
            ("orders_(.*):t_$1", true, "orders_eu", Some("T_EU")),
            ("orders_(.*):\"t_$1\"", true, "orders_eu", Some("\"t_eu\"")),
            (
                "(?<region>[a-z]+)\\.orders:${region}_orders",
                true,
                "eu.orders",
                Some("EU_ORDERS"),
            ),
            (
                "(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k):x$11",
                true,
                "abcdefghijk",
                Some("XK"),
            ),
            ("(a)x:t$12", true, "ax", Some("TA2")),
            ("cost_(.*):t\\$_$1", true, "cost_x", Some("T$_X")),
            ("orders_(.*):t_$1", true, "returns_eu", None),
            // The first matching regex, in order.
            (
                "a_(.*):first_$1,b_(.*):second_$1",
                true,
                "b_1",
                Some("SECOND_1"),
            ),
        ];
        for (map, replacement, topic, want) in cases {
            let got = table(map, *replacement, topic).unwrap();
            assert_eq!(got.as_deref(), *want, "{map} ({replacement}) {topic}");
        }
    }

    /// What the connector refuses is refused, naming the problem.
    #[test]
    fn bad_maps_are_refused_naming_the_problem() {
        let cases: &[(&str, bool, &str)] = &[
            ("a:T,a:U", false, "twice"),
            ("orders.*:T,orders_eu:U", false, "overlap"),
            ("orders_eu:U,orders.*:T", false, "overlap"),
            ("a.b:T,axb:U", false, "overlap"),
            ("a", false, "':' expected"),
            ("a:", false, "found the end"),
            ("a:T;b:U", false, "',' expected"),
            ("a:\"T", false, "unterminated"),
            ("a:\"\"", false, "empty quoted"),
            ("(?=a)b:T", false, "not a regex"),
            ("(a):t$2", true, "1 group"),
            ("(a):t$x", true, "group number"),
            ("(a):t$", true, "group number"),
            ("(a):t${nope}", true, "no group named nope"),
            ("(a):t\\", true, "trailing"),
        ];
        for (map, replacement, needle) in cases {
            let err = TopicTableMap::parse(map, *replacement).unwrap_err();
            assert!(format!("{err:#}").contains(needle), "{map}: {err:#}");
        }
        // A group that matched nothing leaves an empty name: refused when the topic comes.
        let err = table("orders_(.*):$1", true, "orders_").unwrap_err();
        assert!(format!("{err:#}").contains("empty name"), "{err:#}");
    }

    /// Listed topics, then the map, then a single pipe, then the connector's default.
    #[test]
    fn a_pipe_comes_from_the_first_rule_that_names_the_topic() {
        let s = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let map = TopicTableMap::parse("orders\\.(.*):\"Orders $1\"", true).unwrap();
        let r = Routes::new(&s(&["orders.x"]), &s(&["X_PIPE"]), Some(map.clone()));
        assert_eq!(r.pipe_of("orders.x").unwrap(), "X_PIPE");
        assert_eq!(r.pipe_of("orders.eu").unwrap(), "\"Orders eu-STREAMING\"");
        assert_eq!(r.pipe_of("clicks").unwrap(), "X_PIPE");
        let r = Routes::new(&[], &[], Some(map));
        assert_eq!(r.pipe_of("clicks").unwrap(), "\"clicks-STREAMING\"");
        let r = Routes::new(&s(&["a", "b"]), &s(&["A", "B"]), None);
        assert_eq!(r.pipe_of("b").unwrap(), "B");
        assert_eq!(r.pipe_of("c").unwrap(), "\"c-STREAMING\"");
    }

    #[test]
    fn a_subscription_pattern_matches_whole_names() {
        for given in ["orders\\..*", "^orders\\..*", "^orders\\..*$"] {
            assert_eq!(subscription_pattern(given), "^(orders\\..*)$");
            let re = topic_regex(given).unwrap();
            assert!(re.is_match("orders.eu") && !re.is_match("my.orders.eu"));
        }
        assert_eq!(subscription_pattern("cost\\$"), "^(cost\\$)$");
        assert!(topic_regex("(?!x)").is_err());
        #[cfg(target_os = "linux")]
        {
            let err = topic_regex("(?:orders|returns)").unwrap_err().to_string();
            assert!(err.contains("POSIX"), "{err}");
            topic_regex("^(orders|returns)\\.[a-z]+$").unwrap();
        }
    }
}
