//! How deep a statement's expressions can nest, from its tokens, before any parser builds a
//! tree: sqlparser limits parentheses (50 levels) but builds an operator chain in a loop, so
//! `1+1+…+1` of 1 MiB is a tree 500,000 deep, and every recursive walk over it (our compiler
//! and evaluator, sqlparser's own `Drop`, `Clone` and `Display`) overflowed a thread's stack,
//! which aborts the process.
//!
//! The bound: at each level of parentheses, the operators since the last separator (`,`,
//! `WHEN`, `THEN`, `ELSE`, `SELECT`, …) can each add a level, so their count, summed over the
//! open parentheses (each a level too), bounds the depth of the tree at that point.

use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::Token;

/// The deepest a statement's expressions may nest (operators, keywords and parentheses: a
/// bound that counts `a = 1 AND b = 2` as 3 where the tree is 2 deep). A transform of hundreds
/// of columns stays far below (each column is its own expression), and so does a `WHERE` of
/// 100 comparisons; a tree this deep is walked on a 2 MiB stack in a debug build
/// (`hostile_input::an_expression_at_the_depth_limit_…`).
pub(crate) const MAX_EXPRESSION_DEPTH: usize = 256;

/// What a token does to the bound.
enum Kind {
    Open,
    Close,
    /// Ends an expression at its level (the next one is a sibling, not a child).
    Separator,
    Operator,
    Other,
}

fn kind(token: &Token) -> Kind {
    match token {
        Token::LParen | Token::LBracket | Token::LBrace => Kind::Open,
        Token::RParen | Token::RBracket | Token::RBrace => Kind::Close,
        Token::Comma | Token::SemiColon => Kind::Separator,
        Token::Word(w) => match w.keyword {
            // `CASE … END` encloses its branches as parentheses do.
            Keyword::CASE => Kind::Open,
            Keyword::END => Kind::Close,
            Keyword::WHEN
            | Keyword::THEN
            | Keyword::ELSE
            | Keyword::SELECT
            | Keyword::WHERE
            | Keyword::AS => Kind::Separator,
            Keyword::NoKeyword | Keyword::NULL | Keyword::TRUE | Keyword::FALSE => Kind::Other,
            // Any other keyword may be an operator (`AND`, `XOR`, `IS DISTINCT FROM`, `AT TIME
            // ZONE`, `RLIKE`, …): counted, which at worst overestimates.
            _ => Kind::Operator,
        },
        Token::Number(..)
        | Token::SingleQuotedString(_)
        | Token::DoubleQuotedString(_)
        | Token::Whitespace(_)
        | Token::Period
        | Token::Placeholder(_)
        | Token::EOF => Kind::Other,
        // Any other symbol is an operator (`+`, `||`, `::`, `:`, `=`, `-`, …).
        _ => Kind::Operator,
    }
}

/// The bound on how deep `tokens`' expressions nest (see the module docs).
pub(crate) fn expression_depth(tokens: &[Token]) -> usize {
    // Operators since the last separator, per open parenthesis (the statement's level first).
    let mut levels: Vec<usize> = vec![0];
    let mut sum = 0usize;
    let mut deepest = 0usize;
    for token in tokens {
        match kind(token) {
            Kind::Open => levels.push(0),
            Kind::Close if levels.len() > 1 => sum -= levels.pop().unwrap_or(0),
            Kind::Separator => {
                if let Some(last) = levels.last_mut() {
                    sum -= std::mem::take(last);
                }
            }
            Kind::Operator => {
                if let Some(last) = levels.last_mut() {
                    *last += 1;
                    sum += 1;
                }
            }
            Kind::Close | Kind::Other => {}
        }
        deepest = deepest.max(sum + levels.len() - 1);
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::SnowflakeDialect;
    use sqlparser::tokenizer::Tokenizer;

    fn depth(sql: &str) -> usize {
        expression_depth(&Tokenizer::new(&SnowflakeDialect, sql).tokenize().unwrap())
    }

    #[test]
    fn chains_count_and_separators_reset() {
        assert_eq!(depth("SELECT 1+1+1"), 2);
        assert_eq!(depth("SELECT 1+1, 1+1, 1+1"), 1);
        assert_eq!(depth("SELECT (1+(1+1))"), 4);
        assert_eq!(depth("CASE WHEN a = 1 THEN b ELSE c END"), 2);
        // Chains the first version missed: keyword operators, `FROM` inside one, `CASE`s.
        let xor = format!("SELECT {}", vec!["1"; 1_001].join(" XOR "));
        assert!(depth(&xor) >= 1_000);
        let distinct = format!("SELECT {}", vec!["a"; 1_001].join(" IS DISTINCT FROM "));
        assert!(depth(&distinct) >= 1_000);
        let cases = format!(
            "SELECT {}",
            vec!["CASE WHEN 1 THEN 1 END"; 1_001].join(" + ")
        );
        assert!(depth(&cases) >= 1_000);
        let chain = format!("SELECT {}", vec!["1"; 100_001].join("+"));
        assert_eq!(depth(&chain), 100_000);
        let columns: Vec<String> = (0..500).map(|i| format!("$1:c{i}::NUMBER")).collect();
        assert!(depth(&format!("SELECT {} FROM t", columns.join(", "))) <= 4);
        let conditions: Vec<String> = (0..100).map(|i| format!("c{i} = {i}")).collect();
        assert!(depth(&format!("WHERE {}", conditions.join(" AND "))) < MAX_EXPRESSION_DEPTH);
    }
}
