//! A pipe transform's expressions compiled from their SQL tokens into [`PipeExpr`]s, with
//! sqlparser, refusing at `CREATE PIPE` anything the emulator does not evaluate (with a message
//! naming the expression and listing
//! [`SUPPORTED`](super::pipe_expr::SUPPORTED)).

use sqlparser::ast::{
    CaseWhen, CastKind, DataType, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments,
    JsonPathElem, SelectItem, TrimWhereField, UnaryOperator, Value,
};
use sqlparser::dialect::SnowflakeDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

use super::pipe_expr::{BinOp, ExprError, Func, Literal, PipeExpr};
use super::ColumnType;

use leaves::{
    binary_op, cast_type, current_timestamp, path_and_cast, path_step, unsupported, value,
};

mod leaves;

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

/// Turns sqlparser expressions into [`PipeExpr`]s, refusing what the evaluator lacks.
struct Compiler<'a> {
    aliases: &'a [(String, PipeExpr)],
}

impl Compiler<'_> {
    /// One expression: the leaves and operators here, each larger form in a helper of its own.
    fn compile(&self, expr: &Expr) -> Result<PipeExpr, String> {
        let boxed = |e: &Expr| self.compile(e).map(Box::new);
        Ok(match expr {
            Expr::Nested(inner) => self.compile(inner)?,
            Expr::Value(v) => value(expr, &v.value)?,
            // `alias.$1` (the data source's alias).
            Expr::CompoundIdentifier(parts)
                if parts.len() == 2 && parts[1].value == "$1" && parts[1].quote_style.is_none() =>
            {
                PipeExpr::Row(vec![])
            }
            Expr::Identifier(ident) => self.identifier(expr, ident)?,
            Expr::JsonAccess { value, path } => self.json_access(expr, value, &path.path)?,
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
            Expr::UnaryOp { op, expr: inner } => self.unary(expr, op, inner)?,
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
            } => self.like(
                expr,
                inner,
                pattern,
                *negated,
                *any || escape_char.is_some(),
            )?,
            Expr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => self.case(operand.as_deref(), conditions, else_result.as_deref())?,
            Expr::Substring {
                expr: inner,
                substring_from,
                substring_for,
                ..
            } => self.substring(inner, substring_from.as_deref(), substring_for.as_deref())?,
            Expr::Trim {
                expr: inner,
                trim_where,
                trim_what,
                trim_characters,
            } => self.trim(
                expr,
                inner,
                trim_where.as_ref(),
                trim_what.as_deref(),
                trim_characters.as_deref(),
            )?,
            Expr::Function(f) => self.function_call(expr, f)?,
            _ => {
                return Err(unsupported(
                    expr,
                    "this kind of expression is not evaluated",
                ))
            }
        })
    }

    /// `base:path.steps`: folded into the row's path when the base is `$1`.
    fn json_access(
        &self,
        expr: &Expr,
        value: &Expr,
        path: &[JsonPathElem],
    ) -> Result<PipeExpr, String> {
        let more = path
            .iter()
            .map(|step| path_step(expr, step))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(match self.compile(value)? {
            PipeExpr::Row(mut steps) => {
                steps.extend(more);
                PipeExpr::Row(steps)
            }
            base => PipeExpr::Path {
                expr: Box::new(base),
                steps: more,
            },
        })
    }

    fn unary(&self, expr: &Expr, op: &UnaryOperator, inner: &Expr) -> Result<PipeExpr, String> {
        let inner = || self.compile(inner).map(Box::new);
        Ok(match op {
            UnaryOperator::Minus => PipeExpr::Neg(inner()?),
            // Unary plus converts to a number, like `x + 0`.
            UnaryOperator::Plus => PipeExpr::Binary {
                op: BinOp::Add,
                left: inner()?,
                right: Box::new(PipeExpr::Literal(Literal::Number("0".into()))),
            },
            UnaryOperator::Not => PipeExpr::Not(inner()?),
            _ => return Err(unsupported(expr, "this operator is not evaluated")),
        })
    }

    /// `[NOT] LIKE` and `[NOT] ILIKE` (`any_or_escape`: `LIKE ANY` or an `ESCAPE`, refused).
    fn like(
        &self,
        expr: &Expr,
        inner: &Expr,
        pattern: &Expr,
        negated: bool,
        any_or_escape: bool,
    ) -> Result<PipeExpr, String> {
        if any_or_escape {
            return Err(unsupported(expr, "LIKE ANY and ESCAPE are not evaluated"));
        }
        Ok(PipeExpr::Like {
            expr: Box::new(self.compile(inner)?),
            pattern: Box::new(self.compile(pattern)?),
            negated,
            ignore_case: matches!(expr, Expr::ILike { .. }),
        })
    }

    /// `CASE [operand] WHEN … THEN … [ELSE …] END`.
    fn case(
        &self,
        operand: Option<&Expr>,
        conditions: &[CaseWhen],
        otherwise: Option<&Expr>,
    ) -> Result<PipeExpr, String> {
        let boxed = |e: &Expr| self.compile(e).map(Box::new);
        Ok(PipeExpr::Case {
            operand: operand.map(boxed).transpose()?,
            whens: conditions
                .iter()
                .map(|w| Ok((self.compile(&w.condition)?, self.compile(&w.result)?)))
                .collect::<Result<_, String>>()?,
            otherwise: otherwise.map(boxed).transpose()?,
        })
    }

    /// `SUBSTRING(x FROM a [FOR n])` as the call `SUBSTR(x, a[, n])`.
    fn substring(
        &self,
        inner: &Expr,
        from: Option<&Expr>,
        len: Option<&Expr>,
    ) -> Result<PipeExpr, String> {
        let mut args = vec![self.compile(inner)?];
        args.push(match from {
            Some(from) => self.compile(from)?,
            None => PipeExpr::Literal(Literal::Number("1".into())),
        });
        if let Some(len) = len {
            args.push(self.compile(len)?);
        }
        Ok(PipeExpr::Call {
            func: Func::Substr,
            args,
        })
    }

    /// `TRIM([BOTH|LEADING|TRAILING] [chars FROM] x)` and `TRIM(x, chars)` as a call.
    fn trim(
        &self,
        expr: &Expr,
        inner: &Expr,
        trim_where: Option<&TrimWhereField>,
        trim_what: Option<&Expr>,
        trim_characters: Option<&[Expr]>,
    ) -> Result<PipeExpr, String> {
        let func = match trim_where {
            None | Some(TrimWhereField::Both) => Func::Trim,
            Some(TrimWhereField::Leading) => Func::Ltrim,
            Some(TrimWhereField::Trailing) => Func::Rtrim,
        };
        let mut args = vec![self.compile(inner)?];
        match (trim_what, trim_characters) {
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
        Ok(PipeExpr::Call { func, args })
    }

    /// A function call: plain positional arguments only, then [`Self::function`] by name.
    fn function_call(&self, expr: &Expr, f: &Function) -> Result<PipeExpr, String> {
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
                        _ => Err(unsupported(expr, "only positional arguments are evaluated")),
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }
            _ => return Err(unsupported(expr, "this form of arguments is not evaluated")),
        };
        self.function(expr, &name, &args)
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
                self.to_number(expr, name, args, try_cast)
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
                current_timestamp(expr, args.first().copied())
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

    /// `TO_NUMBER(x[, precision[, scale]])`: a cast to the NUMBER the literals name.
    fn to_number(
        &self,
        expr: &Expr,
        name: &str,
        args: &[&Expr],
        try_cast: bool,
    ) -> Result<PipeExpr, String> {
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
