//! Evaluates a pipe transform's expressions (checked at `CREATE PIPE` by the catalog) on one
//! row: the SELECT items that fill the target columns and the `WHERE` predicate that keeps or
//! drops the row (docs/protocol-types-and-sql.md "Pipe transforms (emulator)").
//!
//! Values are SQL NULL, VARIANT (`$1` and paths into it, `PARSE_JSON`; a JSON `null` is a
//! VARIANT null, which `IS NULL` does not match, as in Snowflake), VARCHAR, exact NUMBER (an
//! `i128` and a scale, with Snowflake's result scales: `+`/`-` the larger scale, `*`
//! `min(s1 + s2, max(s1, s2, 12))`, `/` `max(s1, min(s1 + 6, 12))`, rounded half away from
//! zero), FLOAT, BOOLEAN, and dates, times and timestamps as the emulator stores them.
//!
//! Casts (`::T`, `CAST`, `TRY_CAST`, `TO_…`) go through the column conversion itself, so
//! `$1:a::NUMBER(10,2)` rounds, checks precision and refuses exactly as a `NUMBER(10,2)`
//! column would. Implicit conversions follow Snowflake's common cases: strings become numbers
//! in arithmetic and when compared with a number, anything becomes text for string functions.
//! A failing expression is a row error naming the target column (or `WHERE`); `TRY_` forms
//! give NULL instead.

use std::cmp::Ordering;
use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::catalog::pipe_expr::{BinOp, Func, Literal, PathStep, PipeExpr};
use crate::catalog::ColumnType;

use super::pipe_value::{
    and, arithmetic, as_str, cast, compare, div_round, is_numeric, num, or, parse_num, to_bool,
    to_text, Dec, Num, Val, OUT_OF_RANGE,
};
use super::pipe_work::{weight, Work};
use super::time::UTC_FORMAT;
use super::ConvertOptions;

/// What a row's expressions are evaluated against.
pub(super) struct RowContext<'a> {
    pub(super) row: &'a Map<String, Value>,
    /// `METADATA$START_SCAN_TIME` and `CURRENT_TIMESTAMP`.
    pub(super) scan_time: DateTime<Utc>,
    pub(super) options: &'a ConvertOptions,
    /// What the row has spent (`pipe_work.rs`).
    pub(super) work: Work,
}

impl RowContext<'_> {
    /// Compares two values, charging what the comparison reads: two texts as far as the
    /// shorter, anything else both whole (converted at each comparison). A value used more
    /// than once (`IN`, `CASE x`, `BETWEEN`) is read again each time.
    fn compare(&self, a: &Val, b: &Val) -> Result<Option<Ordering>, String> {
        self.work.charge(match (as_str(a), as_str(b)) {
            (Some(x), Some(y)) => x.len().min(y.len()) as u64 + 16,
            _ => weight(a) + weight(b),
        })?;
        compare(a, b)
    }

    /// A value as text, charging the copy.
    fn text(&self, value: &Val) -> Result<Option<String>, String> {
        let text = to_text(value);
        if let Some(t) = &text {
            self.work.charge(t.len() as u64)?;
        }
        Ok(text)
    }

    /// A value just built, charged by its size.
    fn built(&self, value: Val) -> Result<Val, String> {
        self.work.charge(weight(&value))?;
        Ok(value)
    }
}

/// Evaluates the `WHERE` predicate: `true` keeps the row (NULL and FALSE drop it).
///
/// # Errors
///
/// The message of a value the predicate cannot convert.
pub(super) fn keeps(filter: &PipeExpr, ctx: &RowContext<'_>) -> Result<bool, String> {
    let value = eval(filter, ctx, "WHERE")?;
    Ok(to_bool(&value)? == Some(true))
}

/// Evaluates a SELECT item for the column `column` (named in cast messages).
///
/// # Errors
///
/// The message of what cannot be computed (a failed cast, a string that is not a number,
/// division by zero, ...).
pub(super) fn eval(expr: &PipeExpr, ctx: &RowContext<'_>, column: &str) -> Result<Val, String> {
    let ev = |e: &PipeExpr| eval(e, ctx, column);
    Ok(match expr {
        PipeExpr::Row(path) => ctx.built(walk(ctx.row, path))?,
        PipeExpr::Path { expr, steps } => match ev(expr)? {
            Val::Null => Val::Null,
            Val::Variant(v) => ctx.built(walk_value(&v, steps))?,
            other => {
                return Err(format!(
                    "a path applies to a VARIANT, not to '{}' (use PARSE_JSON)",
                    to_text(&other).unwrap_or_default()
                ))
            }
        },
        PipeExpr::Literal(literal) => match literal {
            Literal::Null => Val::Null,
            Literal::Bool(b) => Val::Bool(*b),
            Literal::Text(s) => ctx.built(Val::Text(s.clone()))?,
            Literal::Number(n) => match parse_num(n) {
                Some(Num::Dec(d)) => Val::Number(d),
                Some(Num::Float(f)) => Val::Float(f),
                None => return Err(format!("Numeric value '{n}' is not recognized")),
            },
        },
        PipeExpr::StartScanTime | PipeExpr::CurrentTimestamp => Val::Temporal(
            ColumnType::TimestampLtz { scale: 9 },
            ctx.scan_time.format(UTC_FORMAT).to_string(),
        ),
        PipeExpr::CurrentDate => Val::Temporal(
            ColumnType::Date,
            ctx.scan_time.format("%Y-%m-%d").to_string(),
        ),
        PipeExpr::Cast { expr, ty, try_cast } => match cast(ev(expr)?, ty, ctx.options, column) {
            Err(_) if *try_cast => Val::Null,
            other => ctx.built(other?)?,
        },
        PipeExpr::ParseJson { expr, try_parse } => match ctx.text(&ev(expr)?)? {
            None => Val::Null,
            Some(text) => match serde_json::from_str::<Value>(&text) {
                Ok(v) => ctx.built(Val::Variant(v))?,
                Err(_) if *try_parse => Val::Null,
                Err(e) => return Err(format!("Error parsing JSON: {e}")),
            },
        },
        PipeExpr::Neg(inner) => match num(&ev(inner)?)? {
            None => Val::Null,
            Some(Num::Dec(d)) => Val::Number(Dec::new(-d.m, d.s)?),
            Some(Num::Float(f)) => Val::Float(-f),
        },
        PipeExpr::Not(inner) => match to_bool(&ev(inner)?)? {
            None => Val::Null,
            Some(b) => Val::Bool(!b),
        },
        PipeExpr::Binary { op, left, right } => binary(*op, ev(left)?, || ev(right), ctx)?,
        PipeExpr::IsNull { expr, negated } => Val::Bool((ev(expr)? == Val::Null) != *negated),
        // Each in a function of its own: their locals would widen this frame, which a
        // transform's nesting repeats (256 levels on a worker's 2 MiB stack).
        PipeExpr::Between {
            expr,
            low,
            high,
            negated,
        } => between(ctx, column, [expr, low, high], *negated)?,
        PipeExpr::InList {
            expr,
            list,
            negated,
        } => in_list(ctx, column, expr, list, *negated)?,
        PipeExpr::Like {
            expr,
            pattern,
            negated,
            ignore_case,
        } => like_expr(ctx, column, expr, pattern, *negated, *ignore_case)?,
        PipeExpr::Case {
            operand,
            whens,
            otherwise,
        } => case(ctx, column, operand.as_deref(), whens, otherwise.as_deref())?,
        PipeExpr::Call { func, args } => call(*func, args, ctx, column)?,
    })
}

#[inline(never)]
fn between(
    ctx: &RowContext<'_>,
    column: &str,
    [expr, low, high]: [&PipeExpr; 3],
    negated: bool,
) -> Result<Val, String> {
    let ev = |e: &PipeExpr| eval(e, ctx, column);
    let v = ev(expr)?;
    let above = ctx.compare(&v, &ev(low)?)?.map(|o| o != Ordering::Less);
    let below = ctx.compare(&v, &ev(high)?)?.map(|o| o != Ordering::Greater);
    Ok(negate(and(above, below), negated))
}

#[inline(never)]
fn in_list(
    ctx: &RowContext<'_>,
    column: &str,
    expr: &PipeExpr,
    list: &[PipeExpr],
    negated: bool,
) -> Result<Val, String> {
    let mut v = eval(expr, ctx, column)?;
    let mut found = Some(false);
    for item in list {
        let item = eval(item, ctx, column)?;
        v = numeric_once(v, &item)?;
        match ctx.compare(&v, &item)? {
            Some(Ordering::Equal) => {
                found = Some(true);
                break;
            }
            None => found = None,
            Some(_) => {}
        }
    }
    Ok(negate(found, negated))
}

#[inline(never)]
fn like_expr(
    ctx: &RowContext<'_>,
    column: &str,
    expr: &PipeExpr,
    pattern: &PipeExpr,
    negated: bool,
    ignore_case: bool,
) -> Result<Val, String> {
    let (Some(text), Some(pattern)) = (
        ctx.text(&eval(expr, ctx, column)?)?,
        ctx.text(&eval(pattern, ctx, column)?)?,
    ) else {
        return Ok(Val::Null);
    };
    // The characters of both, four bytes each.
    ctx.work
        .charge(4 * (text.len() as u64 + pattern.len() as u64))?;
    let (text, pattern) = if ignore_case {
        (text.to_lowercase(), pattern.to_lowercase())
    } else {
        (text, pattern)
    };
    let pattern: Vec<char> = pattern.chars().collect();
    if pattern.len() > LIKE_PATTERN_CHARS {
        return Err(format!(
            "LIKE pattern of {} characters is longer than the emulator's limit of \
             {LIKE_PATTERN_CHARS}",
            pattern.len()
        ));
    }
    let chars: Vec<char> = text.chars().collect();
    let matched = like(&chars, &pattern).ok_or_else(|| {
        format!(
            "LIKE over {} characters with a pattern of {} takes more than the emulator's \
             {LIKE_STEPS} steps; use a shorter pattern",
            chars.len(),
            pattern.len()
        )
    })?;
    Ok(Val::Bool(matched != negated))
}

#[inline(never)]
fn case(
    ctx: &RowContext<'_>,
    column: &str,
    operand: Option<&PipeExpr>,
    whens: &[(PipeExpr, PipeExpr)],
    otherwise: Option<&PipeExpr>,
) -> Result<Val, String> {
    let ev = |e: &PipeExpr| eval(e, ctx, column);
    let mut operand = operand.map(ev).transpose()?;
    for (when, then) in whens {
        let w = ev(when)?;
        operand = operand.map(|o| numeric_once(o, &w)).transpose()?;
        let hit = match &operand {
            Some(o) => ctx.compare(o, &w)? == Some(Ordering::Equal),
            None => to_bool(&w)? == Some(true),
        };
        if hit {
            return ev(then);
        }
    }
    match otherwise {
        Some(e) => ev(e),
        None => Ok(Val::Null),
    }
}

/// `$1` and a path into it: a missing key or index is SQL NULL.
fn walk(row: &Map<String, Value>, path: &[PathStep]) -> Val {
    let Some((first, rest)) = path.split_first() else {
        return Val::Variant(Value::Object(row.clone()));
    };
    let PathStep::Key(key) = first else {
        return Val::Null;
    };
    match row.get(key) {
        None => Val::Null,
        Some(value) => walk_value(value, rest),
    }
}

/// A path into a VARIANT value: a missing key or index is SQL NULL.
fn walk_value(value: &Value, path: &[PathStep]) -> Val {
    let mut current = Some(value);
    for step in path {
        current = match (current, step) {
            (Some(Value::Object(o)), PathStep::Key(k)) => o.get(k),
            (Some(Value::Array(a)), PathStep::Index(i)) => a.get(*i),
            _ => None,
        };
    }
    current.map_or(Val::Null, |v| Val::Variant(v.clone()))
}

/// `value`, as the number it compares as once it meets a number (`IN` lists and `CASE x
/// WHEN` compare one value with many): the text is parsed once, not once a comparison.
/// The same answers and errors as comparing the text each time ([`compare`] parses it so).
fn numeric_once(value: Val, other: &Val) -> Result<Val, String> {
    if !is_numeric(other) || is_numeric(&value) {
        return Ok(value);
    }
    Ok(match num(&value)? {
        None => value,
        Some(Num::Dec(d)) => Val::Number(d),
        Some(Num::Float(f)) => Val::Float(f),
    })
}

fn negate(value: Option<bool>, negated: bool) -> Val {
    value.map_or(Val::Null, |b| Val::Bool(b != negated))
}

fn binary(
    op: BinOp,
    left: Val,
    right: impl FnOnce() -> Result<Val, String>,
    ctx: &RowContext<'_>,
) -> Result<Val, String> {
    let right = right()?;
    let ordering = |test: fn(Ordering) -> bool| -> Result<Val, String> {
        Ok(ctx
            .compare(&left, &right)?
            .map_or(Val::Null, |o| Val::Bool(test(o))))
    };
    match op {
        BinOp::And => Ok(and(to_bool(&left)?, to_bool(&right)?).map_or(Val::Null, Val::Bool)),
        BinOp::Or => Ok(or(to_bool(&left)?, to_bool(&right)?).map_or(Val::Null, Val::Bool)),
        BinOp::Eq => ordering(|o| o == Ordering::Equal),
        BinOp::NotEq => ordering(|o| o != Ordering::Equal),
        BinOp::Lt => ordering(|o| o == Ordering::Less),
        BinOp::LtEq => ordering(|o| o != Ordering::Greater),
        BinOp::Gt => ordering(|o| o == Ordering::Greater),
        BinOp::GtEq => ordering(|o| o != Ordering::Less),
        BinOp::Concat => Ok(match (ctx.text(&left)?, ctx.text(&right)?) {
            (Some(a), Some(b)) => {
                ctx.work.charge(a.len() as u64 + b.len() as u64)?;
                Val::Text(a + &b)
            }
            _ => Val::Null,
        }),
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod => {
            let (Some(a), Some(b)) = (num(&left)?, num(&right)?) else {
                return Ok(Val::Null);
            };
            arithmetic(op, a, b)
        }
    }
}

/// The longest `LIKE` pattern a pipe matches: the SQL API's limit, counted in characters.
pub(crate) const LIKE_PATTERN_CHARS: usize = crate::sql_sandbox::LIKE_PATTERN_LIMIT as usize;

/// The most steps one `LIKE` may take (a fraction of a second): text and pattern may both
/// come from the row, and a 16 MB text against a 1,000-character pattern could take 10^10.
pub(crate) const LIKE_STEPS: u64 = 1 << 27;

/// `LIKE` on characters: `%` any run, `_` one character; `None` past [`LIKE_STEPS`]. Greedy,
/// backtracking only to the last `%`: at most text × pattern steps and no recursion (a
/// recursive matcher took exponential time on `%a%a%a%a%b` and overflowed the stack on a
/// pattern of many `%`).
fn like(text: &[char], pattern: &[char]) -> Option<bool> {
    let (answer, _steps) = like_counting(text, pattern);
    #[cfg(test)]
    like_tests::LIKE_STEPS_TAKEN.with(|s| s.set(_steps));
    answer
}

/// [`like`], and the steps it took.
fn like_counting(text: &[char], pattern: &[char]) -> (Option<bool>, u64) {
    let (mut t, mut p) = (0, 0);
    let mut steps = 0u64;
    // After the last `%` seen: where the pattern resumes and the text it was tried at.
    let mut last_any: Option<(usize, usize)> = None;
    while t < text.len() {
        steps += 1;
        if steps > LIKE_STEPS {
            return (None, steps);
        }
        match pattern.get(p) {
            Some('%') => {
                last_any = Some((p + 1, t));
                p += 1;
            }
            Some(&c) if c == '_' || c == text[t] => {
                t += 1;
                p += 1;
            }
            _ => match last_any {
                Some((resume, tried)) => {
                    last_any = Some((resume, tried + 1));
                    p = resume;
                    t = tried + 1;
                }
                None => return (Some(false), steps),
            },
        }
    }
    (Some(pattern[p..].iter().all(|&c| c == '%')), steps)
}

/// A function call: `COALESCE` and `IFF` evaluate only the arguments they need, the others
/// every argument first, then the function's family computes on the values.
fn call(func: Func, args: &[PipeExpr], ctx: &RowContext<'_>, column: &str) -> Result<Val, String> {
    let ev = |i: usize| eval(&args[i], ctx, column);
    // The functions that do not evaluate every argument.
    match func {
        Func::Coalesce => {
            for arg in args {
                let v = eval(arg, ctx, column)?;
                if v != Val::Null {
                    return Ok(v);
                }
            }
            return Ok(Val::Null);
        }
        Func::Iff => {
            let branch = if to_bool(&ev(0)?)? == Some(true) {
                1
            } else {
                2
            };
            return ev(branch);
        }
        _ => {}
    }
    let args = Args {
        values: (0..args.len()).map(ev).collect::<Result<Vec<_>, _>>()?,
        ctx,
    };
    match func {
        Func::Upper | Func::Lower | Func::Length => args.case_or_length(func),
        Func::Trim | Func::Ltrim | Func::Rtrim => args.trim(func),
        Func::Substr => args.substr(),
        Func::Concat => args.concat(),
        Func::Replace => args.replace(),
        Func::NullIf => Ok(match ctx.compare(&args.values[0], &args.values[1])? {
            Some(Ordering::Equal) => Val::Null,
            _ => ctx.built(args.values[0].clone())?,
        }),
        Func::Abs => Ok(match num(&args.values[0])? {
            None => Val::Null,
            Some(Num::Dec(d)) => Val::Number(Dec::new(d.m.abs(), d.s)?),
            Some(Num::Float(f)) => Val::Float(f.abs()),
        }),
        Func::Round => args.round(),
        Func::Coalesce | Func::Iff => unreachable!("evaluated above"),
    }
}

/// A call's evaluated arguments, read as its function needs them (text charged as it is
/// copied).
struct Args<'a, 'r> {
    values: Vec<Val>,
    ctx: &'a RowContext<'r>,
}

impl Args<'_, '_> {
    /// Argument `i` as text (`None`: NULL or absent).
    fn text(&self, i: usize) -> Result<Option<String>, String> {
        self.values.get(i).map_or(Ok(None), |v| self.ctx.text(v))
    }

    /// Argument `i` as a whole number, rounded (`None`: NULL or absent).
    fn int(&self, i: usize) -> Result<Option<i64>, String> {
        Ok(self
            .values
            .get(i)
            .map(num)
            .transpose()?
            .flatten()
            .map(|n| n.to_f64().round() as i64))
    }

    /// `UPPER`, `LOWER` and `LENGTH`.
    fn case_or_length(&self, func: Func) -> Result<Val, String> {
        Ok(match self.text(0)? {
            None => Val::Null,
            Some(s) => match func {
                // At most three bytes out for each in.
                Func::Upper | Func::Lower => {
                    self.ctx.work.charge(s.len() as u64)?;
                    let out = if func == Func::Upper {
                        s.to_uppercase()
                    } else {
                        s.to_lowercase()
                    };
                    self.ctx
                        .work
                        .charge(out.len().saturating_sub(s.len()) as u64)?;
                    Val::Text(out)
                }
                _ => Val::Number(Dec::new(s.chars().count() as i128, 0)?),
            },
        })
    }

    /// `TRIM`, `LTRIM` and `RTRIM`, of spaces or of the characters of the second argument.
    fn trim(&self, func: Func) -> Result<Val, String> {
        // A set: `s.trim_matches(&[char])` tries every character of the list at each
        // position, text × list steps for a list as long as the text.
        let chars: HashSet<char> = match self.values.len() {
            1 => HashSet::from([' ']),
            _ => match self.text(1)? {
                None => return Ok(Val::Null),
                Some(c) => c.chars().collect(),
            },
        };
        let trimmed = |c: char| chars.contains(&c);
        Ok(match self.text(0)? {
            None => Val::Null,
            Some(s) => Val::Text(match func {
                Func::Trim => s.trim_matches(trimmed).to_owned(),
                Func::Ltrim => s.trim_start_matches(trimmed).to_owned(),
                _ => s.trim_end_matches(trimmed).to_owned(),
            }),
        })
    }

    /// `SUBSTR(s, start[, len])`: 1-based, 0 is 1, a negative start counts from the end.
    fn substr(&self) -> Result<Val, String> {
        let (Some(s), Some(start)) = (self.text(0)?, self.int(1)?) else {
            return Ok(Val::Null);
        };
        let len = match self.values.len() {
            3 => match self.int(2)? {
                None => return Ok(Val::Null),
                Some(l) => l.max(0) as usize,
            },
            _ => usize::MAX,
        };
        // 1-based; 0 is 1; a negative start counts from the end.
        let from = if start > 0 {
            (start - 1) as usize
        } else if start == 0 {
            0
        } else {
            s.chars()
                .count()
                .saturating_sub(start.unsigned_abs() as usize)
        };
        Ok(Val::Text(s.chars().skip(from).take(len).collect()))
    }

    /// `CONCAT`: NULL if any argument is.
    fn concat(&self) -> Result<Val, String> {
        let mut out = String::new();
        for i in 0..self.values.len() {
            match self.text(i)? {
                None => return Ok(Val::Null),
                Some(s) => {
                    self.ctx.work.charge(s.len() as u64)?;
                    out.push_str(&s);
                }
            }
        }
        Ok(Val::Text(out))
    }

    /// `REPLACE(s, from[, to])`, its result charged before it is built.
    fn replace(&self) -> Result<Val, String> {
        let to = if self.values.len() == 3 {
            self.text(2)?
        } else {
            Some(String::new())
        };
        Ok(match (self.text(0)?, self.text(1)?, to) {
            (Some(s), Some(from), Some(to)) if !from.is_empty() => {
                // Its size is charged before it is built: tenfold per nested level reaches
                // terabytes in a dozen.
                let hits = s.matches(from.as_str()).count() as u64;
                self.ctx
                    .work
                    .charge(s.len() as u64 - hits * from.len() as u64 + hits * to.len() as u64)?;
                Val::Text(s.replace(&from, &to))
            }
            (Some(s), Some(_), Some(_)) => Val::Text(s),
            _ => Val::Null,
        })
    }

    /// `ROUND(x[, places])`: a float rounded as a float, an exact number at its scale or
    /// left of the point.
    fn round(&self) -> Result<Val, String> {
        let places = if self.values.len() == 2 {
            self.int(1)?
        } else {
            Some(0)
        };
        Ok(match (num(&self.values[0])?, places) {
            (None, _) | (_, None) => Val::Null,
            (Some(Num::Float(f)), Some(p)) => {
                let factor = 10f64.powi(p as i32);
                Val::Float((f * factor).round() / factor)
            }
            (Some(Num::Dec(d)), Some(p)) if p >= i64::from(d.s) => Val::Number(d),
            (Some(Num::Dec(d)), Some(p)) if p >= 0 => Val::Number(d.rescale(p as u32)?),
            (Some(Num::Dec(d)), Some(p)) => {
                let whole = d.rescale(0)?;
                let factor = 10i128
                    .checked_pow(p.unsigned_abs() as u32)
                    .ok_or(OUT_OF_RANGE)?;
                Val::Number(Dec::new(div_round(whole.m, factor) * factor, 0)?)
            }
        })
    }
}

#[cfg(test)]
#[path = "pipe_eval_tests.rs"]
mod like_tests;
