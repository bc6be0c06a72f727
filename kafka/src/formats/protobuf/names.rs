//! What compiling a registered Protobuf schema will cost in full names, judged on its text
//! before `protox` parses it (the fourth security round,
//! `docs/log/security/2026-11-26-hostile-input-fourth-round-issue-72.md`).
//!
//! **Why.** A declaration's full name holds its package and every enclosing message:
//! `protox` and `prost-reflect` keep it for each message, field, enum, enum value, oneof,
//! service, method and extension (in the descriptors and in the pool's name map), and each
//! type reference holds the full name it resolves to (`.pkg.Outer.Inner`), as does each
//! extension its extendee's. The text names the package once; the compiled schema repeats it
//! per declaration. `package <200 KB>;` and a message of 3,000 fields of one message type, a
//! 246 KB schema, took 2.4 GB and 2.7 s to compile (issue 72; 5.3 GB and 12 s here, release).
//! Two more multiplications of the same kind: the pool names every prefix of the package (`a`,
//! `a.a`, …), so a package of many short parts costs its length squared; and a relative type
//! name is looked up in each enclosing scope from the innermost out, each candidate name built
//! (`scope.Name`), so a reference costs the scope's parts times its length.
//!
//! **How.** [`check`] reads the text as tokens (comments and strings skipped), keeps the
//! enclosing scopes' full-name lengths (`package`, then `message`, `enum`, `service` and
//! `group` bodies) and counts two figures, both upper bounds of what they stand for:
//! - **names**: each identifier costs the full name it could get (its scope's length, a dot,
//!   its own); an identifier in an `extend` block also its extendee's full name; `map`,
//!   `group` and `optional` the declarations they add (an entry message and its two fields, a
//!   message beside the field, a proto3 synthetic oneof); the package its prefixes. Every
//!   identifier is counted, keywords too (a field or enum value may be named `to` or `max`):
//!   a normal schema counts about 2–7 bytes per byte of text.
//! - **lookups**: each identifier, the candidate names built while resolving it (its scope's
//!   parts times the scope's length).
//!
//! Past [`MAX_NAME_BYTES`] or [`MAX_LOOKUP_BYTES`] the schema is refused with the figures and
//! the fix, as any schema that cannot be used is (its messages become dead letters naming the
//! schema id). The few `google/protobuf/*` files it may import are small and each may be
//! imported once (`protox` refuses a repeated import), so imports multiply nothing.

/// The most bytes of full names the text may ask for (see the module docs). A 724 KB schema
/// of usual names (1,000 messages of 20 fields in `com.example.platform.orders.events.v1`)
/// counts 4.7 MiB; real schemas are far smaller. A schema counted just under this limit
/// (7.5 MiB: 3,000 fields in a 1,250-byte package) compiled in 0.15 s, peaking at 42–58 MB
/// (release), where the 246 KB attack counted 1.2 GB and took 5.3 GB.
pub(super) const MAX_NAME_BYTES: u64 = 8 << 20;

/// The most bytes of candidate names resolution may build: about 0.1 s of copying and hashing
/// (800 references through a package of 1,000 parts, 32 KB of text, took 0.53 s; release).
pub(super) const MAX_LOOKUP_BYTES: u64 = 256 << 20;

/// What the text asks for.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cost {
    /// Bytes of full names (an upper bound).
    pub names: u64,
    /// Bytes of candidate names built while resolving references (an upper bound).
    pub lookups: u64,
}

/// Refuses a schema whose full names would take more than [`MAX_NAME_BYTES`], or whose
/// references would build more than [`MAX_LOOKUP_BYTES`] of candidate names.
///
/// # Errors
/// The reason, with the count, the limit and the fix.
pub(super) fn check(text: &str) -> Result<(), String> {
    let cost = count(text);
    if cost.names > MAX_NAME_BYTES {
        return Err(format!(
            "the Protobuf schema's full names would take {} bytes once compiled, more than the \
             sink's {} MiB: every declaration's full name and every resolved type name repeats \
             the package and the enclosing messages (a long package, long names nested deep, \
             or many declarations under them). Shorten the package or the nesting, or split \
             the schema; the sink refuses it before compiling",
            cost.names,
            MAX_NAME_BYTES >> 20
        ));
    }
    if cost.lookups > MAX_LOOKUP_BYTES {
        return Err(format!(
            "resolving the Protobuf schema's type names would build {} bytes of candidate \
             names, more than the sink's {} MiB: each relative type name is looked up in every \
             enclosing scope (a package or nesting of many parts). Shorten the package or the \
             nesting, or write the type names fully qualified (`.pkg.Type`); the sink refuses \
             it before compiling",
            cost.lookups,
            MAX_LOOKUP_BYTES >> 20
        ));
    }
    Ok(())
}

/// A token of the text: an identifier or one punctuation character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    Ident(&'a str),
    Punct(u8),
}

/// The tokens of `text`: identifiers and punctuation; comments, strings, numbers and spaces
/// skipped. Malformed text is read as far as it goes: the compiler refuses it.
fn tokens(text: &str) -> impl Iterator<Item = Token<'_>> {
    let bytes = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || loop {
        let c = *bytes.get(i)?;
        match c {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = memchr(bytes, i, b'\n');
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = bytes[i + 2..]
                    .windows(2)
                    .position(|w| w == b"*/")
                    .map_or(bytes.len(), |p| i + 2 + p + 2);
            }
            b'"' | b'\'' => {
                i += 1;
                while let Some(&d) = bytes.get(i) {
                    i += 1;
                    match d {
                        b'\\' => i += 1,
                        b'\n' => break,
                        d if d == c => break,
                        _ => {}
                    }
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while bytes
                    .get(i)
                    .is_some_and(|d| d.is_ascii_alphanumeric() || *d == b'_')
                {
                    i += 1;
                }
                return Some(Token::Ident(&text[start..i]));
            }
            c if c.is_ascii_digit() => {
                // A number: digits, letters (hex, exponents, suffixes), dots, exponent signs.
                i += 1;
                while let Some(&d) = bytes.get(i) {
                    let sign = (d == b'+' || d == b'-')
                        && matches!(bytes[i - 1], b'e' | b'E')
                        && !bytes[..i].starts_with(b"0x");
                    if d.is_ascii_alphanumeric() || d == b'_' || d == b'.' || sign {
                        i += 1;
                    } else {
                        break;
                    }
                }
            }
            c if c.is_ascii_punctuation() => {
                i += 1;
                return Some(Token::Punct(c));
            }
            _ => i += 1,
        }
    })
}

/// The index of the next `byte` at or after `from`, or the end.
fn memchr(bytes: &[u8], from: usize, byte: u8) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| b == byte)
        .map_or(bytes.len(), |p| from + p)
}

/// An enclosing scope: its full name's length and parts, and (in an `extend` block) what each
/// extension's extendee costs.
#[derive(Debug, Clone, Copy)]
struct Scope {
    len: u64,
    parts: u64,
    extendee: u64,
}

impl Scope {
    /// The full name of `name` (`len` bytes) in this scope.
    fn full(&self, len: u64) -> u64 {
        if self.len == 0 {
            len
        } else {
            self.len + 1 + len
        }
    }
}

/// The package the text declares (the longest, if several): its length, its parts, and what
/// the pool's names of its prefixes take.
fn package(text: &str) -> (u64, u64, u64) {
    let mut found = (0, 0, 0);
    let mut tokens = tokens(text);
    let mut depth = 0usize;
    while let Some(token) = tokens.next() {
        match token {
            Token::Punct(b'{') => depth += 1,
            Token::Punct(b'}') => depth = depth.saturating_sub(1),
            Token::Ident("package") if depth == 0 => {
                let (mut len, mut parts, mut prefixes) = (0u64, 0u64, 0u64);
                for t in tokens.by_ref() {
                    match t {
                        Token::Ident(part) => {
                            len += part.len() as u64;
                            parts += 1;
                        }
                        Token::Punct(b'.') => {
                            prefixes = prefixes.saturating_add(len);
                            len += 1;
                        }
                        _ => break,
                    }
                }
                if len > found.0 {
                    found = (len, parts, prefixes.saturating_add(len));
                }
            }
            _ => {}
        }
    }
    found
}

/// What `text`'s full names and lookups would take (see the module docs).
pub(super) fn count(text: &str) -> Cost {
    let (package_len, package_parts, prefixes) = package(text);
    let mut cost = Cost {
        names: prefixes,
        lookups: 0,
    };
    let mut scopes = vec![Scope {
        len: package_len,
        parts: package_parts,
        extendee: 0,
    }];
    // The name a body's `{` opens (`message M {`), an `extend`'s extendee so far, and the
    // keyword that asks for the next identifier as a name.
    let mut named: Option<u64> = None;
    let mut extendee: Option<u64> = None;
    let mut previous: Option<Token<'_>> = None;
    let mut in_package = false;
    // Inside `[…]` or `(…)` (options, an rpc's types): a `{` there is an option's value, and
    // opens no body.
    let mut brackets = 0usize;
    for token in tokens(text) {
        let scope = *scopes.last().unwrap_or(&Scope {
            len: 0,
            parts: 0,
            extendee: 0,
        });
        match token {
            Token::Ident(word) => {
                let len = word.len() as u64;
                if !in_package {
                    let mut names = scope.full(len) + scope.extendee;
                    names += match word {
                        // An entry message named after the field, and its key and value.
                        "map" => 3 * scope.full(16),
                        // The group's message beside its field, and the field's type name.
                        "group" => 2 * scope.full(1),
                        // proto3's synthetic oneof `_name`.
                        "optional" => scope.full(1),
                        _ => 0,
                    };
                    cost.names = cost.names.saturating_add(names);
                    // Each candidate scope's name and this one; in an `extend` block, the
                    // extendee's too.
                    let lookup = scope.len + 1 + len + scope.extendee;
                    cost.lookups = cost
                        .lookups
                        .saturating_add((scope.parts + 1).saturating_mul(lookup));
                }
                if let Some(Token::Ident("message" | "enum" | "service" | "group")) = previous {
                    named = Some(len);
                }
                if let Some(e) = extendee.as_mut() {
                    *e += len;
                }
                if word == "extend" {
                    extendee = Some(0);
                } else if word == "package" && scopes.len() == 1 {
                    in_package = true;
                }
            }
            Token::Punct(b'.') => {
                if let Some(e) = extendee.as_mut() {
                    *e += 1;
                }
            }
            Token::Punct(b'[' | b'(') => brackets += 1,
            Token::Punct(b']' | b')') => brackets = brackets.saturating_sub(1),
            Token::Punct(b'{') => {
                let inner = match (named, extendee) {
                    (Some(len), _) => Scope {
                        len: scope.full(len),
                        parts: scope.parts + 1,
                        extendee: 0,
                    },
                    (None, Some(e)) => Scope {
                        extendee: scope.full(e),
                        ..scope
                    },
                    (None, None) => scope,
                };
                scopes.push(inner);
                // A `{` inside brackets is an option's value: counted in the scope it would
                // open, and the body after it opens that scope again.
                if brackets == 0 {
                    (named, extendee, in_package) = (None, None, false);
                }
            }
            Token::Punct(b'}') if brackets > 0 => {
                if scopes.len() > 1 {
                    scopes.pop();
                }
            }
            Token::Punct(b';') if brackets > 0 => {}
            Token::Punct(b'}') => {
                if scopes.len() > 1 {
                    scopes.pop();
                }
                (named, extendee, in_package) = (None, None, false);
            }
            Token::Punct(b';') => (named, extendee, in_package) = (None, None, false),
            Token::Punct(_) => {}
        }
        previous = Some(token);
    }
    cost
}

#[cfg(test)]
pub(super) mod tests {
    thread_local! {
        /// Schemas this thread gave the compiler (`protox`) after the checks: a refused one
        /// must cost none (the work is counted, not timed).
        pub(in crate::formats::protobuf) static COMPILES: std::cell::Cell<usize> =
            const { std::cell::Cell::new(0) };
    }
    use super::*;
    use crate::formats::protobuf::tests::peak_rss;
    use crate::formats::protobuf::ProtoSchema;

    /// A normal schema counts a few bytes per byte of text, every figure an upper bound of
    /// its full names; comments and strings count nothing.
    #[test]
    fn a_normal_schema_counts_a_few_bytes_of_names_per_byte_of_text() {
        let text = r#"syntax = "proto3";
            package com.example.orders.v1; // a comment: message Huge { }
            import "google/protobuf/timestamp.proto";
            message Order {
              string id = 1 [json_name = "orderId"];
              google.protobuf.Timestamp placed = 2;
              message Line { string sku = 1; int64 quantity = 2; }
              repeated Line lines = 3;
              map<string, Line> by_sku = 4;
              oneof payment { string card = 5; string invoice = 6; }
              optional Status status = 7;
              /* message Hidden { } */
            }
            enum Status { STATUS_UNKNOWN = 0; PAID = 1; }
            service Orders { rpc Get(Order) returns (Order); }
        "#;
        let cost = count(text);
        // `com.example.orders.v1.Order.Line.sku` and the like: more than the declarations'
        // real full names (about 900 bytes), a few times the text.
        assert!(cost.names > 900, "{cost:?}");
        assert!(
            cost.names < 6 * text.len() as u64,
            "{cost:?} for {}",
            text.len()
        );
        assert!(cost.lookups < 30 * text.len() as u64, "{cost:?}");
        check(text).unwrap();
        // Comments and strings name nothing.
        let commented = format!(
            "{text}\n// {}\n/* {} */ option x = \"{}\";",
            "a ".repeat(999),
            "b ".repeat(999),
            "c.".repeat(999)
        );
        let extra = count(&commented).names - cost.names;
        assert!(extra < 100, "{extra}");
    }

    /// Each way a name is multiplied is counted: the package per declaration and reference,
    /// the package's prefixes, the enclosing messages, an extendee per extension, a map's
    /// entry message.
    #[test]
    fn every_multiplication_of_a_name_is_counted() {
        let pkg = "p".repeat(1_000);
        let fields: String = (1..=100).map(|i| format!("A f{i} = {i};")).collect();
        let package = count(&format!(
            "package {pkg}; message A {{}} message B {{ {fields} }}"
        ));
        // 100 fields each name and reference a 1,000-byte package.
        assert!(package.names >= 200 * 1_000, "{package:?}");
        let dotted = count(&format!(
            "package {}; message A {{}}",
            "a.".repeat(500) + "a"
        ));
        // The pool names each of the 501 prefixes: about 501² bytes.
        assert!(dotted.names >= 250_000, "{dotted:?}");
        assert!(dotted.lookups >= 500 * 1_000, "{dotted:?}");
        let mut nested = "int32 x = 1;".to_owned();
        for d in 0..10 {
            nested = format!("message N{d}{} {{ {nested} }}", "n".repeat(1_000));
        }
        let nested = count(&nested);
        // The innermost field alone is 10,000 bytes deep.
        assert!(nested.names >= 10 * 1_000 + 55_000, "{nested:?}");
        let ext: String = (1..=100)
            .map(|i| format!("optional int32 e{i} = {i};"))
            .collect();
        let extend = count(&format!("package {pkg}; extend Foo {{ {ext} }}"));
        assert!(extend.names >= 100 * 2 * 1_000, "{extend:?}");
        let map = count(&format!(
            "package {pkg}; message M {{ map<string, M> m = 1; }}"
        ));
        assert!(map.names >= 5 * 1_000, "{map:?}");
    }

    /// Issue 72: `package <200 KB>;` and 3,000 fields of one message type (246 KB) took 2.4 GB to
    /// compile; the other multiplications of a full name (the package's prefixes, names nested
    /// deep, one extendee per extension, lookups through a package of many parts) took 3 to
    /// 10 GB or seconds at full size (`measure_a_package_name_repeated_by_its_declarations`).
    /// Scaled down (each a few KB to 300 KB of text, tens of MB to compile before): refused before
    /// compiling, at once, naming the cause and the fix; the tests' other schemas and a 50 KB
    /// schema of usual names compile.
    #[test]
    fn full_names_that_multiply_a_schema_are_refused_before_compiling() {
        let fields = |n: usize, ty: &str| -> String {
            (1..=n).map(|i| format!("{ty} f{i} = {i};\n")).collect()
        };
        let pkg = "p".repeat(20_000);
        let mut nested = fields(300, "int32");
        for d in 0..30 {
            nested = format!("message N{d}{} {{\n{nested}}}\n", "n".repeat(1_000));
        }
        let refused = [
            (
                "package",
                format!(
                    "package {pkg}; message A {{}} message B {{ {} }}",
                    fields(300, "A")
                ),
                "full names",
            ),
            (
                "prefixes",
                format!("package {}a; message A {{}}", "a.".repeat(5_000)),
                "full names",
            ),
            ("nested", nested, "full names"),
            (
                "extend",
                format!(
                    "syntax = \"proto2\"; package {pkg}; message Foo {{ extensions 1 to max; }} \
                 extend Foo {{ {} }}",
                    fields(150, "optional int32")
                ),
                "full names",
            ),
            (
                "lookups",
                format!(
                    "package {}a; import \"google/protobuf/timestamp.proto\"; message B {{ {} }}",
                    "a.".repeat(1_000),
                    fields(800, "google.protobuf.Timestamp")
                ),
                "candidate names",
            ),
        ];
        for (what, text, why) in refused {
            COMPILES.with(|c| c.set(0));
            let err = ProtoSchema::parse(&text).unwrap_err();
            assert!(
                err.contains(why) && err.contains("Shorten the package"),
                "{what}: {}",
                &err[..err.len().min(300)]
            );
            // Refused on the text's one pass, before the compiler ran (counted, not timed).
            assert_eq!(COMPILES.with(std::cell::Cell::get), 0, "{what}");
        }
        let usual: String = (0..100)
            .map(|m| {
                format!(
                "message M{m} {{ optional string customer_name = 1; repeated int64 amounts = 2; \
                 map<string, M{m}> index = 3; M{} next = 4; }}\n",
                (m + 1) % 100
            )
            })
            .collect();
        let usual = format!("syntax = \"proto3\"; package com.example.orders.v1;\n{usual}");
        ProtoSchema::parse(&usual).unwrap();
    }

    /// The shapes `names` guards against, and a large normal schema, at full size.
    fn name_attack(which: &str) -> Option<String> {
        let package = |len: usize| "p".repeat(len);
        let fields = |n: usize, ty: &str| -> String {
            (1..=n).map(|i| format!("{ty} f{i} = {i};\n")).collect()
        };
        let nested = |levels: usize, inner: &str| {
            let mut text = inner.to_owned();
            for d in 0..levels {
                text = format!("message N{d}{} {{\n{text}}}\n", "n".repeat(26_000));
            }
            text
        };
        Some(match which {
            // Issue 72: 246 KB, 2.4 GB and 2.7 s before.
            "proto-package" => format!(
                "syntax = \"proto3\";\npackage {};\nmessage A {{}}\nmessage B {{\n{}}}\n",
                package(200_000),
                fields(3_000, "A")
            ),
            // The package of just under the limit's size.
            "proto-under" => format!(
                "syntax = \"proto3\";\npackage {};\nmessage A {{}}\nmessage B {{\n{}}}\n",
                package(1_250),
                fields(3_000, "A")
            ),
            // 100,000 parts: the pool names each prefix.
            "proto-dots" => format!(
                "syntax = \"proto3\";\npackage {}a;\nmessage A {{}}\nmessage B {{ A a = 1; }}\n",
                "a.".repeat(100_000)
            ),
            // 30 levels (`protox` allows 31) of 26 KB names around 1,000 fields.
            "proto-nested" => format!(
                "syntax = \"proto3\";\n{}",
                nested(30, &fields(1_000, "int32"))
            ),
            // The same, the fields of a top-level type: each looked up in 31 scopes.
            "proto-nested-refs" => format!(
                "syntax = \"proto3\";\nmessage T {{}}\n{}",
                nested(30, &fields(1_000, "T"))
            ),
            // 3,000 extensions of one message in a 200 KB package: each holds the extendee.
            "proto-extend" => format!(
                "syntax = \"proto2\";\npackage {};\nmessage Foo {{ extensions 1 to max; }}\n\
             extend Foo {{\n{}}}\n",
                package(200_000),
                fields(3_000, "optional int32")
            ),
            // A custom option on 3,000 fields, its name resolved in a 200 KB package.
            "proto-options" => format!(
                "syntax = \"proto2\";\npackage {};\nimport \"google/protobuf/descriptor.proto\";\n\
             extend google.protobuf.FieldOptions {{ optional int32 o = 50000; }}\n\
             message B {{\n{}}}\n",
                package(200_000),
                (1..=3_000)
                    .map(|i| format!("optional int32 f{i} = {i} [(o) = {i}];\n"))
                    .collect::<String>()
            ),
            // A package of 1,000 parts and 800 references found only outside it: each built in
            // 1,001 candidate scopes (within the names' limit, past the lookups').
            "proto-lookups" => format!(
                "syntax = \"proto3\";\npackage {}a;\nimport \"google/protobuf/timestamp.proto\";\n\
             message B {{\n{}}}\n",
                "a.".repeat(1_000),
                fields(800, "google.protobuf.Timestamp")
            ),
            // One import 20,000 times.
            "proto-imports" => format!(
                "syntax = \"proto3\";\n{}message A {{}}\n",
                "import \"google/protobuf/timestamp.proto\";\n".repeat(20_000)
            ),
            // A large normal schema: 1,000 messages of 20 fields in a usual package (about 1 MB).
            "proto-normal" => {
                let message = |m: usize| {
                    let body: String = (1..=20)
                        .map(|i| match i % 4 {
                            0 => format!("  Message{} link_{i} = {i};\n", (m + 1) % 1_000),
                            1 => format!("  optional string customer_field_{i} = {i};\n"),
                            2 => format!("  repeated int64 amounts_{i} = {i};\n"),
                            _ => format!("  map<string, Message{m}> index_{i} = {i};\n"),
                        })
                        .collect();
                    format!("message Message{m} {{\n{body}}}\n")
                };
                format!(
                    "syntax = \"proto3\";\npackage com.example.platform.orders.events.v1;\n{}",
                    (0..1_000).map(message).collect::<String>()
                )
            }
            _ => return None,
        })
    }

    /// Issue 72: a package name repeated by every declaration and resolved type name, and the
    /// other shapes of [`name_attack`], measured (opt-in: `SNOWPIPE_MEASURE_SCHEMA=proto-package`,
    /// `proto-dots`, `proto-nested`, …; a release build; `SNOWPIPE_MEASURE_RAW=1` compiles
    /// without the checks, the cost before them). Prints the count, the time, the outcome and the
    /// test process's peak RSS.
    #[test]
    fn measure_a_package_name_repeated_by_its_declarations() {
        let Ok(which) = std::env::var("SNOWPIPE_MEASURE_SCHEMA") else {
            return;
        };
        let Some(text) = name_attack(&which) else {
            return;
        };
        let raw = std::env::var("SNOWPIPE_MEASURE_RAW").is_ok();
        let cost = count(&text);
        let t = std::time::Instant::now();
        let outcome = if raw {
            ProtoSchema::compile(&text)
        } else {
            ProtoSchema::parse(&text)
        };
        eprintln!(
            "{which} (raw {raw}): {} bytes, {cost:?}, {:?}: {:?}; {}",
            text.len(),
            t.elapsed(),
            outcome
                .map(|_| ())
                .map_err(|e| e.chars().take(300).collect::<String>()),
            peak_rss()
        );
    }
}
