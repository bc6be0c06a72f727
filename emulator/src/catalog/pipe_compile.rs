//! A pipe transform's expressions compiled from their SQL tokens into [`PipeExpr`]s, with
//! sqlparser, refusing at `CREATE PIPE` anything the emulator does not evaluate (with a message
//! naming the expression and listing [`SUPPORTED`]).

use sqlparser::ast::{
    BinaryOperator, CastKind, DataType, Expr, FunctionArg, FunctionArgExpr, FunctionArguments,
    JsonPathElem, SelectItem, TrimWhereField, UnaryOperator, Value,
};
use sqlparser::dialect::SnowflakeDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

use super::pipe_expr::{BinOp, ExprError, Func, Literal, PathStep, PipeExpr, SUPPORTED};
use super::ColumnType;

/// One parsed SELECT item: its expression, its alias, and for `$1[:path][::TYPE]` items the
/// path of keys and the cast as written (for [`super::ProjectionItem`]).
pub(crate) struct SelectExpr {
    pub(crate) expr: PipeExpr,
    pub(crate) alias: Option<String>,
    pub(crate) path: Option<Vec<String>>,
    pub(crate) cast: Option<String>,
}

/// Parses and checks one SELECT item (`expr [[AS] alias]`).
///
/// # Errors
///
/// A message naming what does not parse or what the emulator does not evaluate (`*` included:
/// a transform lists its expressions).
pub(crate) fn select_item(tokens: &[Token]) -> Result<SelectExpr, ExprError> {
    let dialect = SnowflakeDialect {};
    let mut parser = Parser::new(&dialect).with_tokens(tokens.to_vec());
    let item = parser.parse_select_item().map_err(|e| {
        ExprError::Syntax(format!(
            "cannot parse SELECT item `{}`: {e}",
            render(tokens)
        ))
    })?;
    expect_end(&mut parser, tokens).map_err(ExprError::Syntax)?;
    let (expr, alias) = match item {
        SelectItem::UnnamedExpr(expr) => (expr, None),
        SelectItem::ExprWithAlias { expr, alias } => (
            expr,
            Some(if alias.quote_style.is_some() {
                alias.value
            } else {
                alias.value.to_uppercase()
            }),
        ),
        _ => {
            return Err(ExprError::Unsupported(format!(
                "`{}` in the pipe's SELECT: a streaming transform lists one expression per \
                 column of COPY INTO t (c1, c2, ...), for example $1:c1, $1:c2; to load columns \
                 by name use COPY INTO t FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING')) \
                 MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE",
                render(tokens)
            )))
        }
    };
    let (path, cast) = path_and_cast(&expr);
    Ok(SelectExpr {
        expr: Compiler { aliases: &[] }
            .compile(&expr)
            .map_err(ExprError::Unsupported)?,
        alias,
        path,
        cast,
    })
}

/// Parses and checks the `WHERE` predicate; `aliases` are the SELECT items' aliases, which the
/// predicate may name.
///
/// # Errors
///
/// As [`select_item`].
pub(crate) fn predicate(
    tokens: &[Token],
    aliases: &[(String, PipeExpr)],
) -> Result<PipeExpr, ExprError> {
    let dialect = SnowflakeDialect {};
    let mut parser = Parser::new(&dialect).with_tokens(tokens.to_vec());
    let expr = parser
        .parse_expr()
        .map_err(|e| ExprError::Syntax(format!("cannot parse WHERE `{}`: {e}", render(tokens))))?;
    expect_end(&mut parser, tokens).map_err(ExprError::Syntax)?;
    Compiler { aliases }
        .compile(&expr)
        .map_err(ExprError::Unsupported)
}

fn expect_end(parser: &mut Parser<'_>, tokens: &[Token]) -> Result<(), String> {
    let next = parser.peek_token();
    if next.token == Token::EOF {
        Ok(())
    } else {
        Err(format!("unexpected {} in `{}`", next.token, render(tokens)))
    }
}

/// For `$1[:path][::TYPE]`: the keys of the path (none when it has an index) and the cast.
fn path_and_cast(expr: &Expr) -> (Option<Vec<String>>, Option<String>) {
    let (inner, cast) = match expr {
        Expr::Cast {
            kind: CastKind::DoubleColon,
            expr,
            data_type,
            format: None,
        } => (
            expr.as_ref(),
            Some(data_type.to_string().to_uppercase().replace(", ", ",")),
        ),
        other => (other, None),
    };
    let path = match inner {
        Expr::Value(v) if matches!(&v.value, Value::Placeholder(p) if p == "$1") => Some(vec![]),
        Expr::JsonAccess { value, path } if matches!(value.as_ref(), Expr::Value(v) if matches!(&v.value, Value::Placeholder(p) if p == "$1")) => {
            path.path
                .iter()
                .map(|step| match step {
                    JsonPathElem::Dot { key, .. } => Some(key.clone()),
                    JsonPathElem::Bracket {
                        key: Expr::Value(v),
                    } => match &v.value {
                        Value::SingleQuotedString(k) => Some(k.clone()),
                        _ => None,
                    },
                    _ => None,
                })
                .collect()
        }
        _ => None,
    };
    let cast = if path.is_some() { cast } else { None };
    (path, cast)
}

/// Turns sqlparser expressions into [`PipeExpr`]s, refusing what the evaluator lacks.
struct Compiler<'a> {
    aliases: &'a [(String, PipeExpr)],
}

impl Compiler<'_> {
    fn compile(&self, expr: &Expr) -> Result<PipeExpr, String> {
        let boxed = |e: &Expr| self.compile(e).map(Box::new);
        Ok(match expr {
            Expr::Nested(inner) => self.compile(inner)?,
            Expr::Value(v) => match &v.value {
                Value::Placeholder(p) if p == "$1" => PipeExpr::Row(vec![]),
                Value::Placeholder(p) => {
                    return Err(unsupported(
                        expr,
                        &format!("the streaming source has one column, $1 (found {p})"),
                    ))
                }
                Value::Number(n, _) => PipeExpr::Literal(Literal::Number(n.clone())),
                Value::SingleQuotedString(s) => PipeExpr::Literal(Literal::Text(s.clone())),
                Value::Boolean(b) => PipeExpr::Literal(Literal::Bool(*b)),
                Value::Null => PipeExpr::Literal(Literal::Null),
                _ => return Err(unsupported(expr, "this kind of literal is not evaluated")),
            },
            // `alias.$1` (the data source's alias).
            Expr::CompoundIdentifier(parts)
                if parts.len() == 2 && parts[1].value == "$1" && parts[1].quote_style.is_none() =>
            {
                PipeExpr::Row(vec![])
            }
            Expr::Identifier(ident) => self.identifier(expr, ident)?,
            Expr::JsonAccess { value, path } => {
                let more = path
                    .path
                    .iter()
                    .map(|step| path_step(expr, step))
                    .collect::<Result<Vec<_>, _>>()?;
                match self.compile(value)? {
                    PipeExpr::Row(mut steps) => {
                        steps.extend(more);
                        PipeExpr::Row(steps)
                    }
                    base => PipeExpr::Path {
                        expr: Box::new(base),
                        steps: more,
                    },
                }
            }
            Expr::Cast {
                kind,
                expr: inner,
                data_type,
                format,
            } => {
                if format.is_some() {
                    return Err(unsupported(expr, "cast formats are not evaluated"));
                }
                PipeExpr::Cast {
                    expr: boxed(inner)?,
                    ty: cast_type(expr, data_type)?,
                    try_cast: matches!(kind, CastKind::TryCast | CastKind::SafeCast),
                }
            }
            Expr::UnaryOp { op, expr: inner } => match op {
                UnaryOperator::Minus => PipeExpr::Neg(boxed(inner)?),
                // Unary plus converts to a number, like `x + 0`.
                UnaryOperator::Plus => PipeExpr::Binary {
                    op: BinOp::Add,
                    left: boxed(inner)?,
                    right: Box::new(PipeExpr::Literal(Literal::Number("0".into()))),
                },
                UnaryOperator::Not => PipeExpr::Not(boxed(inner)?),
                _ => return Err(unsupported(expr, "this operator is not evaluated")),
            },
            Expr::BinaryOp { left, op, right } => PipeExpr::Binary {
                op: binary_op(expr, op)?,
                left: boxed(left)?,
                right: boxed(right)?,
            },
            Expr::IsNull(inner) => PipeExpr::IsNull {
                expr: boxed(inner)?,
                negated: false,
            },
            Expr::IsNotNull(inner) => PipeExpr::IsNull {
                expr: boxed(inner)?,
                negated: true,
            },
            Expr::Between {
                expr: inner,
                negated,
                low,
                high,
            } => PipeExpr::Between {
                expr: boxed(inner)?,
                low: boxed(low)?,
                high: boxed(high)?,
                negated: *negated,
            },
            Expr::InList {
                expr: inner,
                list,
                negated,
            } => PipeExpr::InList {
                expr: boxed(inner)?,
                list: list
                    .iter()
                    .map(|e| self.compile(e))
                    .collect::<Result<_, _>>()?,
                negated: *negated,
            },
            Expr::Like {
                negated,
                any,
                expr: inner,
                pattern,
                escape_char,
            }
            | Expr::ILike {
                negated,
                any,
                expr: inner,
                pattern,
                escape_char,
            } => {
                if *any || escape_char.is_some() {
                    return Err(unsupported(expr, "LIKE ANY and ESCAPE are not evaluated"));
                }
                PipeExpr::Like {
                    expr: boxed(inner)?,
                    pattern: boxed(pattern)?,
                    negated: *negated,
                    ignore_case: matches!(expr, Expr::ILike { .. }),
                }
            }
            Expr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => PipeExpr::Case {
                operand: operand.as_deref().map(boxed).transpose()?,
                whens: conditions
                    .iter()
                    .map(|w| Ok((self.compile(&w.condition)?, self.compile(&w.result)?)))
                    .collect::<Result<_, String>>()?,
                otherwise: else_result.as_deref().map(boxed).transpose()?,
            },
            Expr::Substring {
                expr: inner,
                substring_from,
                substring_for,
                ..
            } => {
                let mut args = vec![self.compile(inner)?];
                args.push(match substring_from {
                    Some(from) => self.compile(from)?,
                    None => PipeExpr::Literal(Literal::Number("1".into())),
                });
                if let Some(len) = substring_for {
                    args.push(self.compile(len)?);
                }
                PipeExpr::Call {
                    func: Func::Substr,
                    args,
                }
            }
            Expr::Trim {
                expr: inner,
                trim_where,
                trim_what,
                trim_characters,
            } => {
                let func = match trim_where {
                    None | Some(TrimWhereField::Both) => Func::Trim,
                    Some(TrimWhereField::Leading) => Func::Ltrim,
                    Some(TrimWhereField::Trailing) => Func::Rtrim,
                };
                let mut args = vec![self.compile(inner)?];
                match (trim_what, trim_characters.as_deref()) {
                    (Some(what), None) => args.push(self.compile(what)?),
                    (None, Some([chars])) => args.push(self.compile(chars)?),
                    (None, None) => {}
                    _ => {
                        return Err(unsupported(
                            expr,
                            "TRIM takes a string and the characters to remove",
                        ))
                    }
                }
                PipeExpr::Call { func, args }
            }
            Expr::Function(f) => {
                let name = f.name.to_string().to_uppercase();
                if f.over.is_some()
                    || f.filter.is_some()
                    || f.null_treatment.is_some()
                    || !f.within_group.is_empty()
                    || !matches!(f.parameters, FunctionArguments::None)
                {
                    return Err(unsupported(
                        expr,
                        "window and aggregate clauses are not evaluated",
                    ));
                }
                let args = match &f.args {
                    FunctionArguments::None => vec![],
                    FunctionArguments::List(list)
                        if list.duplicate_treatment.is_none() && list.clauses.is_empty() =>
                    {
                        list.args
                            .iter()
                            .map(|a| match a {
                                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e),
                                _ => Err(unsupported(
                                    expr,
                                    "only positional arguments are evaluated",
                                )),
                            })
                            .collect::<Result<Vec<_>, _>>()?
                    }
                    _ => return Err(unsupported(expr, "this form of arguments is not evaluated")),
                };
                self.function(expr, &name, &args)?
            }
            _ => {
                return Err(unsupported(
                    expr,
                    "this kind of expression is not evaluated",
                ))
            }
        })
    }

    fn identifier(&self, expr: &Expr, ident: &sqlparser::ast::Ident) -> Result<PipeExpr, String> {
        let name = if ident.quote_style.is_some() {
            ident.value.clone()
        } else {
            ident.value.to_uppercase()
        };
        if let Some((_, aliased)) = self.aliases.iter().find(|(alias, _)| *alias == name) {
            return Ok(aliased.clone());
        }
        match name.as_str() {
            "METADATA$START_SCAN_TIME" => Ok(PipeExpr::StartScanTime),
            "CURRENT_TIMESTAMP" | "LOCALTIMESTAMP" => Ok(PipeExpr::CurrentTimestamp),
            "CURRENT_DATE" => Ok(PipeExpr::CurrentDate),
            _ if name.starts_with("METADATA$") => Err(unsupported(
                expr,
                "the emulator evaluates METADATA$START_SCAN_TIME only (what Snowflake puts in \
                 the other METADATA$ columns for streamed rows is not documented)",
            )),
            _ => Err(unsupported(
                expr,
                "not a column of the streaming source: read the row as $1 (for example \
                 $1:name)",
            )),
        }
    }

    fn function(&self, expr: &Expr, name: &str, args: &[&Expr]) -> Result<PipeExpr, String> {
        let arity = |min: usize, max: usize| {
            if (min..=max).contains(&args.len()) {
                Ok(())
            } else if min == max {
                Err(unsupported(
                    expr,
                    &format!("{name} takes {min} argument(s)"),
                ))
            } else {
                Err(unsupported(
                    expr,
                    &format!("{name} takes {min} to {max} arguments"),
                ))
            }
        };
        let compiled = || {
            args.iter()
                .map(|a| self.compile(a))
                .collect::<Result<Vec<_>, _>>()
        };
        let call = |func: Func, min: usize, max: usize| -> Result<PipeExpr, String> {
            arity(min, max)?;
            Ok(PipeExpr::Call {
                func,
                args: compiled()?,
            })
        };
        let (base, try_cast) = match name.strip_prefix("TRY_") {
            Some(rest) if rest.starts_with("TO_") || rest == "PARSE_JSON" => (rest, true),
            _ => (name, false),
        };
        let cast = |ty: ColumnType| -> Result<PipeExpr, String> {
            arity(1, 1).map_err(|_| {
                unsupported(
                    expr,
                    &format!("{name} takes 1 argument here (format arguments are not evaluated)"),
                )
            })?;
            Ok(PipeExpr::Cast {
                expr: Box::new(self.compile(args[0])?),
                ty,
                try_cast,
            })
        };
        match base {
            "UPPER" => call(Func::Upper, 1, 1),
            "LOWER" => call(Func::Lower, 1, 1),
            "TRIM" => call(Func::Trim, 1, 2),
            "LTRIM" => call(Func::Ltrim, 1, 2),
            "RTRIM" => call(Func::Rtrim, 1, 2),
            "LENGTH" | "LEN" => call(Func::Length, 1, 1),
            "SUBSTR" | "SUBSTRING" => call(Func::Substr, 2, 3),
            "CONCAT" => call(Func::Concat, 1, usize::MAX),
            "REPLACE" => call(Func::Replace, 2, 3),
            "COALESCE" => call(Func::Coalesce, 1, usize::MAX),
            "NVL" => call(Func::Coalesce, 2, 2),
            "IFF" => call(Func::Iff, 3, 3),
            "NULLIF" => call(Func::NullIf, 2, 2),
            "ABS" => call(Func::Abs, 1, 1),
            "ROUND" => call(Func::Round, 1, 2),
            "TO_VARCHAR" | "TO_CHAR" if !try_cast => cast(ColumnType::Varchar { max_len: None }),
            "TO_DOUBLE" => cast(ColumnType::Float),
            "TO_BOOLEAN" => cast(ColumnType::Boolean),
            "TO_DATE" => cast(ColumnType::Date),
            "TO_TIMESTAMP" | "TO_TIMESTAMP_NTZ" => cast(ColumnType::TimestampNtz { scale: 9 }),
            "TO_TIMESTAMP_LTZ" => cast(ColumnType::TimestampLtz { scale: 9 }),
            "TO_TIMESTAMP_TZ" => cast(ColumnType::TimestampTz { scale: 9 }),
            "TO_NUMBER" | "TO_DECIMAL" | "TO_NUMERIC" => {
                arity(1, 3)?;
                let mut ps = Vec::new();
                for arg in &args[1..] {
                    match arg {
                        Expr::Value(v) if matches!(&v.value, Value::Number(..)) => {
                            ps.push(v.value.to_string())
                        }
                        _ => {
                            return Err(unsupported(
                                expr,
                                &format!(
                                    "{name}'s precision and scale must be integer literals \
                                     (format arguments are not evaluated)"
                                ),
                            ))
                        }
                    }
                }
                let ty = ColumnType::from_data_type(&DataType::Custom(
                    sqlparser::ast::ObjectName::from(vec![sqlparser::ast::Ident::new("NUMBER")]),
                    ps,
                ))
                .map_err(|e| unsupported(expr, &e))?;
                Ok(PipeExpr::Cast {
                    expr: Box::new(self.compile(args[0])?),
                    ty,
                    try_cast,
                })
            }
            "PARSE_JSON" => {
                arity(1, 1)?;
                Ok(PipeExpr::ParseJson {
                    expr: Box::new(self.compile(args[0])?),
                    try_parse: try_cast,
                })
            }
            "CURRENT_TIMESTAMP" | "LOCALTIMESTAMP" | "SYSTIMESTAMP" => {
                arity(0, 1)?;
                match args.first() {
                    None => Ok(PipeExpr::CurrentTimestamp),
                    Some(Expr::Value(v)) => match &v.value {
                        Value::Number(n, _) => {
                            let scale = n
                                .parse::<u8>()
                                .ok()
                                .filter(|s| *s <= 9)
                                .ok_or_else(|| unsupported(expr, "the precision is 0 to 9"))?;
                            Ok(PipeExpr::Cast {
                                expr: Box::new(PipeExpr::CurrentTimestamp),
                                ty: ColumnType::TimestampLtz { scale },
                                try_cast: false,
                            })
                        }
                        _ => Err(unsupported(expr, "the precision is an integer literal")),
                    },
                    Some(_) => Err(unsupported(expr, "the precision is an integer literal")),
                }
            }
            "CURRENT_DATE" => {
                arity(0, 0)?;
                Ok(PipeExpr::CurrentDate)
            }
            _ => Err(unsupported(
                expr,
                &format!("the emulator does not evaluate the function {name}"),
            )),
        }
    }
}

fn path_step(expr: &Expr, step: &JsonPathElem) -> Result<PathStep, String> {
    match step {
        JsonPathElem::Dot { key, .. } => Ok(PathStep::Key(key.clone())),
        JsonPathElem::Bracket {
            key: Expr::Value(v),
        } => match &v.value {
            Value::SingleQuotedString(k) => Ok(PathStep::Key(k.clone())),
            Value::Number(n, _) => n
                .parse()
                .map(PathStep::Index)
                .map_err(|_| unsupported(expr, "an array index is a non-negative integer")),
            _ => Err(unsupported(
                expr,
                "a path step is a name, a 'string' or an index",
            )),
        },
        _ => Err(unsupported(
            expr,
            "a path step is a name, a 'string' or an index",
        )),
    }
}

fn cast_type(expr: &Expr, data_type: &DataType) -> Result<ColumnType, String> {
    match ColumnType::from_data_type(data_type) {
        Ok(ColumnType::Binary { .. }) => {
            Err(unsupported(expr, "casts to BINARY are not evaluated"))
        }
        Ok(ty) => Ok(ty),
        Err(e) => Err(unsupported(expr, &e)),
    }
}

fn binary_op(expr: &Expr, op: &BinaryOperator) -> Result<BinOp, String> {
    Ok(match op {
        BinaryOperator::Plus => BinOp::Add,
        BinaryOperator::Minus => BinOp::Sub,
        BinaryOperator::Multiply => BinOp::Mul,
        BinaryOperator::Divide => BinOp::Div,
        BinaryOperator::Modulo => BinOp::Mod,
        BinaryOperator::StringConcat => BinOp::Concat,
        BinaryOperator::Eq => BinOp::Eq,
        BinaryOperator::NotEq => BinOp::NotEq,
        BinaryOperator::Lt => BinOp::Lt,
        BinaryOperator::LtEq => BinOp::LtEq,
        BinaryOperator::Gt => BinOp::Gt,
        BinaryOperator::GtEq => BinOp::GtEq,
        BinaryOperator::And => BinOp::And,
        BinaryOperator::Or => BinOp::Or,
        _ => {
            return Err(unsupported(
                expr,
                &format!("the operator {op} is not evaluated"),
            ))
        }
    })
}

/// The message for an expression the emulator refuses: what, why, and what it supports.
fn unsupported(expr: &Expr, why: &str) -> String {
    format!("pipe transform expression `{expr}` is not supported: {why}. The emulator evaluates {SUPPORTED}")
}

/// Renders tokens back to text, with spaces only between adjacent words.
pub(crate) fn render(tokens: &[Token]) -> String {
    let mut out = String::new();
    let mut previous_word = false;
    for token in tokens {
        let is_word = matches!(token, Token::Word(_) | Token::Number(..));
        if is_word && previous_word {
            out.push(' ');
        }
        out.push_str(&token.to_string());
        previous_word = is_word;
    }
    out
}
