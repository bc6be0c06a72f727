//! The expressions of a pipe transform — the SELECT list and the `WHERE` predicate of
//! `COPY INTO t (cols) FROM (SELECT … FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING')) [WHERE …])`
//! — parsed with sqlparser and checked when the pipe is created.
//!
//! Only what the emulator evaluates (`convert::pipe_eval`) gets through: anything else is
//! refused at `CREATE PIPE` with a message naming the expression and listing what is
//! supported ([`SUPPORTED`]), so a pipe never loads NULL in place of an expression it could
//! not compute (docs/protocol-types-and-sql.md "Pipe transforms (emulator)").
//!
//! Names follow Snowflake: function names and `METADATA$…` ignore case; JSON path steps keep
//! the case they are written in (`$1:Name` reads the key `Name`), quoted (`$1:"a b"`) or not.

use super::ColumnType;

/// What a pipe transform may contain, for error messages.
pub(crate) const SUPPORTED: &str = "$1 and paths into it ($1:a.b, $1:\"Key\"[0], $1['k']) or \
     into other VARIANT values, \
     literals, casts (::TYPE, CAST, TRY_CAST), + - * / %, ||, comparisons, AND/OR/NOT, \
     IS [NOT] NULL, [NOT] BETWEEN, [NOT] IN (list), [NOT] LIKE/ILIKE, CASE, \
     METADATA$START_SCAN_TIME, and the functions UPPER, LOWER, TRIM, LTRIM, RTRIM, LENGTH/LEN, \
     SUBSTR/SUBSTRING, CONCAT, REPLACE, COALESCE, NVL, IFF, NULLIF, ABS, ROUND, \
     TO_VARCHAR/TO_CHAR, TO_NUMBER/TO_DECIMAL/TO_NUMERIC (with precision and scale), TO_DOUBLE, \
     TO_BOOLEAN, TO_DATE, TO_TIMESTAMP[_NTZ|_LTZ|_TZ], the TRY_ forms of the TO_ functions, \
     PARSE_JSON, TRY_PARSE_JSON, CURRENT_TIMESTAMP, CURRENT_DATE";

/// One expression of a pipe transform, checked at `CREATE PIPE`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PipeExpr {
    /// `$1` (the row) and a path into it (`$1:a.b[0]`).
    Row(Vec<PathStep>),
    /// A path into another VARIANT value (`PARSE_JSON(x):a`).
    Path {
        expr: Box<PipeExpr>,
        steps: Vec<PathStep>,
    },
    /// A literal.
    Literal(Literal),
    /// `METADATA$START_SCAN_TIME`: when the row was ingested.
    StartScanTime,
    /// `CURRENT_TIMESTAMP`.
    CurrentTimestamp,
    /// `CURRENT_DATE`.
    CurrentDate,
    /// `x::T`, `CAST(x AS T)`, `TRY_CAST(x AS T)` and the `TO_…` conversion functions.
    Cast {
        expr: Box<PipeExpr>,
        ty: ColumnType,
        /// `TRY_CAST`/`TRY_TO_…`: NULL instead of a row error.
        try_cast: bool,
    },
    /// `PARSE_JSON(x)` / `TRY_PARSE_JSON(x)`.
    ParseJson {
        expr: Box<PipeExpr>,
        try_parse: bool,
    },
    /// `-x`.
    Neg(Box<PipeExpr>),
    /// `NOT x`.
    Not(Box<PipeExpr>),
    /// A binary operator.
    Binary {
        op: BinOp,
        left: Box<PipeExpr>,
        right: Box<PipeExpr>,
    },
    /// `x IS [NOT] NULL`.
    IsNull { expr: Box<PipeExpr>, negated: bool },
    /// `x [NOT] BETWEEN low AND high`.
    Between {
        expr: Box<PipeExpr>,
        low: Box<PipeExpr>,
        high: Box<PipeExpr>,
        negated: bool,
    },
    /// `x [NOT] IN (a, b, …)`.
    InList {
        expr: Box<PipeExpr>,
        list: Vec<PipeExpr>,
        negated: bool,
    },
    /// `x [NOT] LIKE|ILIKE pattern`.
    Like {
        expr: Box<PipeExpr>,
        pattern: Box<PipeExpr>,
        negated: bool,
        ignore_case: bool,
    },
    /// `CASE [operand] WHEN … THEN … [ELSE …] END`.
    Case {
        operand: Option<Box<PipeExpr>>,
        whens: Vec<(PipeExpr, PipeExpr)>,
        otherwise: Option<Box<PipeExpr>>,
    },
    /// A scalar function.
    Call { func: Func, args: Vec<PipeExpr> },
}

/// One step of a path into the row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PathStep {
    /// An object key (`.name`, `."Name"`, `['name']`).
    Key(String),
    /// An array index (`[0]`).
    Index(usize),
}

/// A literal of a pipe expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Literal {
    Null,
    Bool(bool),
    /// A number as written (`12.50`, `1e3`).
    Number(String),
    Text(String),
}

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Concat,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    And,
    Or,
}

/// A scalar function the evaluator implements (conversions are [`PipeExpr::Cast`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    Upper,
    Lower,
    Trim,
    Ltrim,
    Rtrim,
    Length,
    Substr,
    Concat,
    Replace,
    Coalesce,
    Iff,
    NullIf,
    Abs,
    Round,
}

/// Why an expression is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ExprError {
    /// The text does not parse.
    Syntax(String),
    /// It parses, but the emulator does not evaluate it.
    Unsupported(String),
}

impl ExprError {
    pub(crate) fn into_message(self) -> String {
        match self {
            Self::Syntax(m) | Self::Unsupported(m) => m,
        }
    }
}
