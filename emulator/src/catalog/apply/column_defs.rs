//! `CREATE TABLE` column definitions → catalog columns: types, `NOT NULL`, `DEFAULT`,
//! `AUTOINCREMENT`/`IDENTITY`.

use sqlparser::ast::{ColumnDef, ColumnOption};

use super::super::{Column, ColumnDefault, ColumnType, Ident, StatementError};

pub(super) fn columns(defs: &[ColumnDef]) -> Result<Vec<Column>, StatementError> {
    let mut out: Vec<Column> = Vec::with_capacity(defs.len());
    for def in defs {
        let name = Ident {
            value: def.name.value.clone(),
            quoted: def.name.quote_style.is_some(),
        }
        .normalized();
        if out.iter().any(|c| c.name == name) {
            return Err(StatementError::Syntax(format!("duplicate column {name}")));
        }
        let ty = ColumnType::from_data_type(&def.data_type).map_err(|message| {
            StatementError::ColumnType {
                column: name.clone(),
                message,
            }
        })?;
        let nullable = !def.options.iter().any(|o| {
            matches!(
                o.option,
                ColumnOption::NotNull | ColumnOption::PrimaryKey(_)
            )
        });
        let mut default = None;
        for o in &def.options {
            let parsed = match &o.option {
                ColumnOption::Default(expr) => ColumnDefault::from_default_expr(expr),
                ColumnOption::Identity(kind) => {
                    if !matches!(ty, ColumnType::Number { scale: 0, .. }) {
                        return Err(StatementError::ColumnType {
                            column: name.clone(),
                            message: format!("{kind} needs an integer column, not {ty}"),
                        });
                    }
                    ColumnDefault::from_identity(kind)
                }
                _ => continue,
            };
            let parsed = parsed.map_err(|message| StatementError::ColumnType {
                column: name.clone(),
                message,
            })?;
            if default.replace(parsed).is_some() {
                return Err(StatementError::Syntax(format!(
                    "column {name} has more than one DEFAULT/AUTOINCREMENT/IDENTITY"
                )));
            }
        }
        out.push(Column {
            name,
            ty,
            nullable,
            default,
        });
    }
    Ok(out)
}
