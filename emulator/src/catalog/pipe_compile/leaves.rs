//! The leaves of a pipe transform's compilation, with no recursion into subexpressions:
//! literals, path steps, cast types, operators, `CURRENT_TIMESTAMP`'s precision, the
//! `$1[:path][::TYPE]` shape of a SELECT item, and the message refusing an expression.

use sqlparser::ast::{BinaryOperator, CastKind, DataType, Expr, JsonPathElem, Value};

use crate::catalog::pipe_expr::{BinOp, Literal, PathStep, PipeExpr, SUPPORTED};
use crate::catalog::ColumnType;

/// For `$1[:path][::TYPE]`: the keys of the path (none when it has an index) and the cast.
pub(super) fn path_and_cast(expr: &Expr) -> (Option<Vec<String>>, Option<String>) {
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

/// `CURRENT_TIMESTAMP[(precision)]`: the scan time, cast to `TIMESTAMP_LTZ(precision)` when given.
pub(super) fn current_timestamp(expr: &Expr, precision: Option<&Expr>) -> Result<PipeExpr, String> {
    match precision {
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

/// A literal, or `$1` (the streaming source's one column).
pub(super) fn value(expr: &Expr, value: &Value) -> Result<PipeExpr, String> {
    Ok(match value {
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
    })
}

pub(super) fn path_step(expr: &Expr, step: &JsonPathElem) -> Result<PathStep, String> {
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

pub(super) fn cast_type(expr: &Expr, data_type: &DataType) -> Result<ColumnType, String> {
    match ColumnType::from_data_type(data_type) {
        Ok(ColumnType::Binary { .. }) => {
            Err(unsupported(expr, "casts to BINARY are not evaluated"))
        }
        Ok(ty) => Ok(ty),
        Err(e) => Err(unsupported(expr, &e)),
    }
}

pub(super) fn binary_op(expr: &Expr, op: &BinaryOperator) -> Result<BinOp, String> {
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
pub(super) fn unsupported(expr: &Expr, why: &str) -> String {
    format!("pipe transform expression `{expr}` is not supported: {why}. The emulator evaluates {SUPPORTED}")
}
