//! The catalog's data model: tables, columns and Snowflake column types.

use std::fmt;

use sqlparser::ast::{
    ArrayElemTypeDef, BinaryLength, CharacterLength, DataType, ExactNumberInfo, Expr,
    IdentityPropertyFormatKind, IdentityPropertyKind, ObjectNamePart, TimezoneInfo, UnaryOperator,
    Value,
};

/// A table declared with `CREATE TABLE`.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Database name, as stored (unquoted identifiers upper-cased).
    pub database: String,
    /// Schema name, as stored.
    pub schema: String,
    /// Table name, as stored.
    pub name: String,
    /// Columns in declaration order.
    pub columns: Vec<Column>,
    /// `ERROR_LOGGING = TRUE`: rejected rows go to the table's error table.
    pub error_logging: bool,
    /// `ENABLE_SCHEMA_EVOLUTION = TRUE`: appended rows add columns for their new fields and
    /// drop `NOT NULL` from the columns they leave empty (docs/protocol-types-and-sql.md "Table features").
    pub schema_evolution: bool,
}

impl Table {
    /// `"DB.SCHEMA.TABLE"`: the fully qualified name, also the emulator's SQLite table name.
    pub fn qualified_name(&self) -> String {
        format!("{}.{}.{}", self.database, self.schema, self.name)
    }

    /// Each column's name in the SQLite table, in order ([`storage_names`]).
    pub fn storage_names(&self) -> Vec<String> {
        storage_names(&self.columns)
    }

    /// The SQLite name of the table's error table, `ERROR_TABLE(DB.SCHEMA.TABLE)`: what
    /// `SELECT … FROM ERROR_TABLE(<table>)` reads through the SQL API.
    pub fn error_table_name(&self) -> String {
        format!("ERROR_TABLE({})", self.qualified_name())
    }

    /// The name of the table's default pipe: the table name followed by `-STREAMING`
    /// ([`super::DEFAULT_PIPE_SUFFIX`]).
    pub fn default_pipe_name(&self) -> String {
        format!("{}{}", self.name, super::DEFAULT_PIPE_SUFFIX)
    }

    /// Each column's name, SQL type name and nullability, in declaration order: what tests
    /// compare a parsed table with.
    #[cfg(any(test, feature = "internals"))]
    pub fn column_summary(&self) -> Vec<(&str, String, bool)> {
        self.columns
            .iter()
            .map(|c| (c.name.as_str(), c.ty.sql_name(), c.nullable))
            .collect()
    }

    /// The column with exactly this name, if any.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The column a row's key `key` fills: the column of exactly that name, else (with
    /// `ignore_case`, the default pipe's matching) the first whose name matches it ignoring
    /// case.
    pub fn column_for_key(&self, key: &str, ignore_case: bool) -> Option<&Column> {
        self.column(key).or_else(|| {
            ignore_case
                .then(|| {
                    self.columns
                        .iter()
                        .find(|c| same_name_ignoring_case(&c.name, key))
                })
                .flatten()
        })
    }
}

/// Longest identifier (a table's, a column's), in characters: Snowflake's identifier limit,
/// 255 (docs/protocol-types-and-sql.md "Table features (emulator)", \[IDN\]).
pub const MAX_COLUMN_NAME_CHARS: usize = 255;

/// Refuses a name longer than Snowflake's identifier limit ([`MAX_COLUMN_NAME_CHARS`]), or
/// holding a NUL (SQLite, where the emulator stores every object, ends a name at its first
/// NUL: such a name cannot be stored, and whatever the request is retried with it never
/// will), as every DDL path must; `what` says which name (`"a column name"`, `"a name"`).
///
/// # Errors
/// The message, naming the length and the limit, or where the NUL is.
pub(crate) fn check_name_length(what: &str, name: &str) -> Result<(), String> {
    if let Some(at) = name.find('\0') {
        return Err(format!(
            "{what} with a NUL character (U+0000) at byte {at}: the emulator cannot store it; \
             remove it from the name"
        ));
    }
    let chars = name.chars().count();
    if chars > MAX_COLUMN_NAME_CHARS {
        return Err(format!(
            "{what} of {chars} characters: identifiers are at most {MAX_COLUMN_NAME_CHARS}"
        ));
    }
    Ok(())
}

/// Whether a column name and a row's key are the same name ignoring case.
pub(crate) fn same_name_ignoring_case(column: &str, key: &str) -> bool {
    if column.is_ascii() && key.is_ascii() {
        column.eq_ignore_ascii_case(key)
    } else {
        column.to_uppercase() == key.to_uppercase()
    }
}

/// A table column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Column name, as stored (unquoted identifiers upper-cased).
    pub name: String,
    /// The declared Snowflake type.
    pub ty: ColumnType,
    /// `false` when declared `NOT NULL` (or `PRIMARY KEY`).
    pub nullable: bool,
    /// What the engine writes when a row omits the column (`DEFAULT`, `AUTOINCREMENT`,
    /// `IDENTITY`); `None`: NULL.
    pub default: Option<ColumnDefault>,
}

/// A column's `DEFAULT` or `AUTOINCREMENT`/`IDENTITY`, filled by the engine when a row omits
/// the column (docs/protocol-types-and-sql.md "Table features").
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnDefault {
    /// `DEFAULT <constant>`: the constant as JSON (`DEFAULT 'x'` → `"x"`, `DEFAULT 5` → `5`,
    /// `DEFAULT NULL` → `null`), converted to the column's type like a row's value.
    Constant(serde_json::Value),
    /// `DEFAULT CURRENT_TIMESTAMP()` (also `SYSDATE()`, `LOCALTIMESTAMP`, `GETDATE()`...):
    /// the time of the conversion.
    CurrentTimestamp,
    /// `DEFAULT CURRENT_DATE()`.
    CurrentDate,
    /// `DEFAULT CURRENT_TIME()` (also `LOCALTIME`).
    CurrentTime,
    /// `AUTOINCREMENT`/`IDENTITY` `[(start, increment) | START s INCREMENT i]`: the next value
    /// of the table's sequence for that column (both default to 1).
    Identity {
        /// The first value.
        start: i64,
        /// The step between values (may be negative, never 0).
        increment: i64,
    },
}

/// The Snowflake column types the emulator models.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnType {
    /// `NUMBER(p,s)`, also `DECIMAL`/`NUMERIC`; the integer types are `NUMBER(38,0)`.
    Number {
        /// Total number of digits (1..=38).
        precision: u8,
        /// Digits after the decimal point (0..=precision).
        scale: u8,
    },
    /// `FLOAT`, `FLOAT4`, `FLOAT8`, `DOUBLE`, `DOUBLE PRECISION`, `REAL`.
    Float,
    /// `VARCHAR(n)`, also `STRING`, `TEXT`, `CHAR(n)`, `CHARACTER`, `NVARCHAR`...
    Varchar {
        /// Maximum length in characters; `None` for the default maximum.
        max_len: Option<u32>,
    },
    /// `BOOLEAN`.
    Boolean,
    /// `DATE`.
    Date,
    /// `TIME(p)`.
    Time {
        /// Fractional-second digits kept (0..=9; 9 when the DDL gives none).
        scale: u8,
    },
    /// `TIMESTAMP_NTZ(p)`, also `DATETIME` and `TIMESTAMP` (the default
    /// `TIMESTAMP_TYPE_MAPPING`).
    TimestampNtz {
        /// Fractional-second digits kept (0..=9; 9 when the DDL gives none).
        scale: u8,
    },
    /// `TIMESTAMP_LTZ(p)`.
    TimestampLtz {
        /// Fractional-second digits kept (0..=9; 9 when the DDL gives none).
        scale: u8,
    },
    /// `TIMESTAMP_TZ(p)`.
    TimestampTz {
        /// Fractional-second digits kept (0..=9; 9 when the DDL gives none).
        scale: u8,
    },
    /// `VARIANT`.
    Variant,
    /// `OBJECT`.
    Object,
    /// `ARRAY`.
    Array,
    /// `BINARY(n)` / `VARBINARY(n)`.
    Binary {
        /// Maximum length in bytes; `None` for the default maximum.
        max_len: Option<u32>,
    },
}

impl ColumnType {
    /// The canonical Snowflake spelling, e.g. `NUMBER(7,2)`, `VARCHAR(255)`, `TIMESTAMP_NTZ`.
    pub fn sql_name(&self) -> String {
        match self {
            Self::Number { precision, scale } => format!("NUMBER({precision},{scale})"),
            Self::Float => "FLOAT".into(),
            Self::Varchar { max_len: Some(n) } => format!("VARCHAR({n})"),
            Self::Varchar { max_len: None } => "VARCHAR".into(),
            Self::Boolean => "BOOLEAN".into(),
            Self::Date => "DATE".into(),
            Self::Time { scale } => with_scale("TIME", *scale),
            Self::TimestampNtz { scale } => with_scale("TIMESTAMP_NTZ", *scale),
            Self::TimestampLtz { scale } => with_scale("TIMESTAMP_LTZ", *scale),
            Self::TimestampTz { scale } => with_scale("TIMESTAMP_TZ", *scale),
            Self::Variant => "VARIANT".into(),
            Self::Object => "OBJECT".into(),
            Self::Array => "ARRAY".into(),
            Self::Binary { max_len: Some(n) } => format!("BINARY({n})"),
            Self::Binary { max_len: None } => "BINARY".into(),
        }
    }

    /// Maps a parsed SQL data type to a Snowflake column type.
    ///
    /// # Errors
    ///
    /// A message naming the type when it is not supported, or when its parameters are out of
    /// range (`NUMBER(40,0)`, a scale above the precision, ...).
    pub(crate) fn from_data_type(data_type: &DataType) -> Result<Self, String> {
        let unsupported = || {
            Err(format!(
                "unsupported column type {data_type}; supported: NUMBER/DECIMAL/NUMERIC/INT..., \
                 FLOAT/DOUBLE/REAL, VARCHAR/STRING/TEXT/CHAR, BOOLEAN, DATE, TIME, \
                 TIMESTAMP/DATETIME/TIMESTAMP_NTZ/TIMESTAMP_LTZ/TIMESTAMP_TZ, VARIANT, OBJECT, \
                 ARRAY, BINARY/VARBINARY"
            ))
        };
        let ty = match data_type {
            DataType::Character(len) | DataType::Char(len) => Self::Varchar {
                max_len: Some(char_len(len.as_ref(), data_type)?.unwrap_or(1)),
            },
            DataType::CharacterVarying(len)
            | DataType::CharVarying(len)
            | DataType::Varchar(len)
            | DataType::Nvarchar(len) => Self::Varchar {
                max_len: char_len(len.as_ref(), data_type)?,
            },
            DataType::String(len) => Self::Varchar {
                max_len: len.map(|n| length(n, data_type)).transpose()?,
            },
            DataType::Text => Self::Varchar { max_len: None },
            DataType::Binary(len) => Self::Binary {
                max_len: len.map(|n| length(n, data_type)).transpose()?,
            },
            DataType::Varbinary(len) => Self::Binary {
                max_len: match len {
                    Some(BinaryLength::IntegerLength { length: n }) => Some(length(*n, data_type)?),
                    _ => None,
                },
            },
            DataType::Numeric(info)
            | DataType::Decimal(info)
            | DataType::Dec(info)
            | DataType::BigNumeric(info)
            | DataType::BigDecimal(info) => number(info)?,
            DataType::TinyInt(_)
            | DataType::SmallInt(_)
            | DataType::Int(_)
            | DataType::Integer(_)
            | DataType::BigInt(_) => Self::INTEGER,
            DataType::Float(_)
            | DataType::Float4
            | DataType::Float8
            | DataType::Float64
            | DataType::Double(_)
            | DataType::DoublePrecision
            | DataType::Real => Self::Float,
            DataType::Boolean | DataType::Bool => Self::Boolean,
            DataType::Date => Self::Date,
            DataType::Time(p, _) => Self::Time {
                scale: fraction_digits(*p, data_type)?,
            },
            DataType::Datetime(p) | DataType::TimestampNtz(p) => Self::TimestampNtz {
                scale: fraction_digits(*p, data_type)?,
            },
            DataType::Timestamp(p, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => {
                Self::TimestampNtz {
                    scale: fraction_digits(*p, data_type)?,
                }
            }
            DataType::Timestamp(p, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => {
                Self::TimestampTz {
                    scale: fraction_digits(*p, data_type)?,
                }
            }
            DataType::Array(ArrayElemTypeDef::None) => Self::Array,
            DataType::Array(_) | DataType::Map(..) => return structured(data_type),
            DataType::Custom(name, args) => {
                let [ObjectNamePart::Identifier(ident)] = name.0.as_slice() else {
                    return unsupported();
                };
                match ident.value.to_ascii_uppercase().as_str() {
                    "NUMBER" | "NUMERIC" | "DECIMAL" | "DEC" => number_args(args)?,
                    "INT" | "INTEGER" | "BIGINT" | "SMALLINT" | "TINYINT" | "BYTEINT" => {
                        Self::INTEGER
                    }
                    "FLOAT" | "FLOAT4" | "FLOAT8" | "DOUBLE" | "REAL" => Self::Float,
                    "NCHAR" | "NVARCHAR2" | "VARCHAR" | "STRING" | "TEXT" | "CHAR" => {
                        Self::Varchar {
                            max_len: args.first().map(|a| parse_len(a, data_type)).transpose()?,
                        }
                    }
                    "TIMESTAMP_NTZ" | "TIMESTAMPNTZ" | "DATETIME" => Self::TimestampNtz {
                        scale: fraction_arg(args, data_type)?,
                    },
                    "TIMESTAMP_LTZ" | "TIMESTAMPLTZ" => Self::TimestampLtz {
                        scale: fraction_arg(args, data_type)?,
                    },
                    "TIMESTAMP_TZ" | "TIMESTAMPTZ" => Self::TimestampTz {
                        scale: fraction_arg(args, data_type)?,
                    },
                    "TIME" => Self::Time {
                        scale: fraction_arg(args, data_type)?,
                    },
                    "VARIANT" => Self::Variant,
                    "OBJECT" | "ARRAY" | "MAP" if !args.is_empty() => return structured(data_type),
                    "OBJECT" => Self::Object,
                    "ARRAY" => Self::Array,
                    "MAP" => return structured(data_type),
                    "BOOLEAN" => Self::Boolean,
                    "VARBINARY" | "BINARY" => Self::Binary {
                        max_len: args.first().map(|a| parse_len(a, data_type)).transpose()?,
                    },
                    _ => return unsupported(),
                }
            }
            _ => return unsupported(),
        };
        Ok(ty)
    }

    /// `NUMBER(38,0)`, the type of `INT`, `INTEGER`, `BIGINT` and friends.
    pub const INTEGER: Self = Self::Number {
        precision: 38,
        scale: 0,
    };
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sql_name())
    }
}

/// The refusal of a structured type (`ARRAY(INT)`, `OBJECT(a INT)`, `MAP(VARCHAR, INT)`):
/// Snowflake checks and converts each element to its declared type, which the emulator does
/// not, so it would store values the account refuses or stores differently.
fn structured(data_type: &DataType) -> Result<ColumnType, String> {
    Err(format!(
        "structured type {data_type} is not supported by the emulator (it would not check or \
         convert the elements to their declared types); declare the column as semi-structured \
         ARRAY, OBJECT or VARIANT, or test structured types against a Snowflake account"
    ))
}

/// `NAME` for the default 9 fractional digits, else `NAME(p)`.
fn with_scale(name: &str, scale: u8) -> String {
    if scale == 9 {
        name.into()
    } else {
        format!("{name}({scale})")
    }
}

/// The `p` of `TIME(p)`/`TIMESTAMP_*(p)`: 0..=9, 9 when absent (Snowflake's default).
fn fraction_digits(p: Option<u64>, data_type: &DataType) -> Result<u8, String> {
    match p {
        None => Ok(9),
        Some(p) if p <= 9 => Ok(p as u8),
        Some(p) => Err(format!(
            "invalid fractional-seconds precision {p} in type {data_type}: it must be 0 to 9"
        )),
    }
}

fn fraction_arg(args: &[String], data_type: &DataType) -> Result<u8, String> {
    let p = args
        .first()
        .map(|a| {
            a.trim().parse::<u64>().map_err(|_| {
                format!("invalid fractional-seconds precision {a} in type {data_type}")
            })
        })
        .transpose()?;
    fraction_digits(p, data_type)
}

fn length(n: u64, data_type: &DataType) -> Result<u32, String> {
    u32::try_from(n)
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("invalid length {n} in type {data_type}"))
}

fn parse_len(arg: &str, data_type: &DataType) -> Result<u32, String> {
    let n = arg
        .trim()
        .parse::<u64>()
        .map_err(|_| format!("invalid length {arg} in type {data_type}"))?;
    length(n, data_type)
}

fn char_len(len: Option<&CharacterLength>, data_type: &DataType) -> Result<Option<u32>, String> {
    match len {
        Some(CharacterLength::IntegerLength { length: n, .. }) => Ok(Some(length(*n, data_type)?)),
        Some(CharacterLength::Max) | None => Ok(None),
    }
}

fn number(info: &ExactNumberInfo) -> Result<ColumnType, String> {
    match info {
        ExactNumberInfo::None => Ok(ColumnType::INTEGER),
        ExactNumberInfo::Precision(p) => number_ps(*p, 0),
        ExactNumberInfo::PrecisionAndScale(p, s) => {
            let s = u64::try_from(*s).map_err(|_| format!("invalid scale {s}: must be 0..=37"))?;
            number_ps(*p, s)
        }
    }
}

fn number_args(args: &[String]) -> Result<ColumnType, String> {
    let parse = |a: &String| {
        a.trim()
            .parse::<u64>()
            .map_err(|_| format!("invalid NUMBER parameter {a}"))
    };
    match args {
        [] => Ok(ColumnType::INTEGER),
        [p] => number_ps(parse(p)?, 0),
        [p, s] => number_ps(parse(p)?, parse(s)?),
        _ => Err(format!(
            "NUMBER takes at most 2 parameters, got {}",
            args.len()
        )),
    }
}

fn number_ps(precision: u64, scale: u64) -> Result<ColumnType, String> {
    if !(1..=38).contains(&precision) {
        return Err(format!("invalid precision {precision}: must be 1..=38"));
    }
    if scale > precision.min(37) {
        return Err(format!(
            "invalid scale {scale}: must be 0..=37 and at most the precision {precision}"
        ));
    }
    Ok(ColumnType::Number {
        precision: precision as u8,
        scale: scale as u8,
    })
}

impl ColumnDefault {
    /// Reads `DEFAULT <expr>`: a constant (number, string, boolean, NULL, a negative number)
    /// or one of the current-time functions.
    ///
    /// # Errors
    ///
    /// A message naming the expression when it is anything else (a sequence's `NEXTVAL`, an
    /// arbitrary function): the emulator does not evaluate SQL expressions.
    pub(crate) fn from_default_expr(expr: &Expr) -> Result<Self, String> {
        let unsupported = || {
            Err(format!(
                "unsupported DEFAULT {expr}: the emulator fills constants (numbers, strings, \
                 TRUE/FALSE, NULL), CURRENT_TIMESTAMP/CURRENT_DATE/CURRENT_TIME and \
                 AUTOINCREMENT/IDENTITY"
            ))
        };
        let time_function = |name: &str| match name.to_ascii_uppercase().as_str() {
            "CURRENT_TIMESTAMP" | "SYSDATE" | "SYSTIMESTAMP" | "GETDATE" | "LOCALTIMESTAMP" => {
                Some(Self::CurrentTimestamp)
            }
            "CURRENT_DATE" => Some(Self::CurrentDate),
            "CURRENT_TIME" | "LOCALTIME" => Some(Self::CurrentTime),
            _ => None,
        };
        match expr {
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) => number_json(&n.to_string())
                    .map(Self::Constant)
                    .ok_or(())
                    .or_else(|()| unsupported()),
                Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => {
                    Ok(Self::Constant(serde_json::Value::String(s.clone())))
                }
                Value::Boolean(b) => Ok(Self::Constant(serde_json::Value::Bool(*b))),
                Value::Null => Ok(Self::Constant(serde_json::Value::Null)),
                _ => unsupported(),
            },
            Expr::UnaryOp {
                op: UnaryOperator::Minus,
                expr: inner,
            } => match inner.as_ref() {
                Expr::Value(v) => match &v.value {
                    Value::Number(n, _) => number_json(&format!("-{n}"))
                        .map(Self::Constant)
                        .ok_or(())
                        .or_else(|()| unsupported()),
                    _ => unsupported(),
                },
                _ => unsupported(),
            },
            Expr::Nested(inner) => Self::from_default_expr(inner),
            Expr::Function(f) => match f.name.0.as_slice() {
                [ObjectNamePart::Identifier(ident)] => {
                    time_function(&ident.value).map_or_else(unsupported, Ok)
                }
                _ => unsupported(),
            },
            Expr::Identifier(ident) => time_function(&ident.value).map_or_else(unsupported, Ok),
            _ => unsupported(),
        }
    }

    /// Reads `AUTOINCREMENT`/`IDENTITY` with its optional start and increment.
    ///
    /// # Errors
    ///
    /// A message when the start or increment is not an integer, or the increment is 0.
    pub(crate) fn from_identity(kind: &IdentityPropertyKind) -> Result<Self, String> {
        let (IdentityPropertyKind::Autoincrement(property)
        | IdentityPropertyKind::Identity(property)) = kind;
        let (start, increment) = match &property.parameters {
            None => (1, 1),
            Some(
                IdentityPropertyFormatKind::FunctionCall(p)
                | IdentityPropertyFormatKind::StartAndIncrement(p),
            ) => (integer_expr(&p.seed)?, integer_expr(&p.increment)?),
        };
        if increment == 0 {
            return Err(format!("{kind}: the increment must not be 0"));
        }
        Ok(Self::Identity { start, increment })
    }
}

/// A SQL number literal as a JSON number (integers exactly; others as their text parsed
/// into a JSON number, which the column's conversion rounds as it would a row's value).
fn number_json(text: &str) -> Option<serde_json::Value> {
    if let Ok(i) = text.parse::<i64>() {
        return Some(serde_json::Value::from(i));
    }
    // Kept as a string: NUMBER columns read numeric strings exactly, FLOAT columns parse them.
    text.parse::<f64>()
        .ok()
        .map(|_| serde_json::Value::String(text.to_owned()))
}

fn integer_expr(expr: &Expr) -> Result<i64, String> {
    let text = match expr {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.to_string(),
            _ => String::new(),
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr: inner,
        } => match inner.as_ref() {
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) => format!("-{n}"),
                _ => String::new(),
            },
            _ => String::new(),
        },
        _ => String::new(),
    };
    text.parse::<i64>()
        .map_err(|_| format!("AUTOINCREMENT/IDENTITY takes integers, found {expr}"))
}

#[cfg(test)]
mod tests;

/// The SQLite column name of each of `columns` (in order): its own name, except for a column
/// whose name differs from an earlier one's only in ASCII case (`"a"` after `A`), which
/// Snowflake keeps apart but SQLite, whose column names ignore ASCII case, would take for the
/// same column: that one is stored as `<name>~<position>` (`~` added until no earlier
/// storage name matches). Columns are only ever added at the end, so a column's storage name
/// never changes, and a table without such twins (every table of a data directory from before
/// they were kept) is stored under its own names. The one mapping from a Snowflake column
/// name to a SQLite one: the SQLite DDL and inserts, schema evolution, the SQL API's rewrite,
/// the console's preview.
pub fn storage_names(columns: &[Column]) -> Vec<String> {
    let mut taken = std::collections::HashSet::with_capacity(columns.len());
    columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut name = c.name.clone();
            if taken.contains(&name.to_ascii_lowercase()) {
                name = format!("{}~{i}", c.name);
                while taken.contains(&name.to_ascii_lowercase()) {
                    name.push('~');
                }
            }
            taken.insert(name.to_ascii_lowercase());
            name
        })
        .collect()
}
