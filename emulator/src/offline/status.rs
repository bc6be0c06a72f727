//! The status of a data directory, read without a running emulator
//! (`snowpipe-emulator status`).

/// Reads the status of a data directory without a running emulator (what
/// `snowpipe-emulator status --data-dir DIR` prints): pipes from the stored DDL, channels with
/// their committed offset tokens and counters, and row counts per table.
///
/// # Errors
/// When the directory holds no emulator database.
pub fn status_from_data_dir(
    dir: &std::path::Path,
) -> Result<serde_json::Value, crate::base::error::EmulatorError> {
    let conn = crate::storage::open_read_only(dir)?;
    let mut catalog = crate::catalog::Catalog::new();
    for sql in crate::storage::stored_ddl(&conn)? {
        catalog
            .apply_sql(&sql)
            .map_err(|e| crate::base::error::EmulatorError::catalog(e.to_string()))?;
    }
    // Default pipes exist from their first use (docs/protocol-types-and-sql.md "Table features").
    let created = crate::storage::created_default_pipes(&conn).map_err(|e| {
        crate::base::error::EmulatorError::storage("")
            .with_source(crate::base::error::sqlite_cause(&e))
    })?;
    let pipes: Vec<serde_json::Value> = catalog
        .pipes()
        .into_iter()
        .filter(|p| {
            !p.is_default
                || created.iter().any(|(d, s, n)| {
                    (d.as_str(), s.as_str(), n.as_str())
                        == (p.database.as_str(), p.schema.as_str(), p.name.as_str())
                })
        })
        .map(|p| {
            serde_json::json!({"database": p.database, "schema": p.schema, "name": p.name,
                               "table": p.table, "is_default": p.is_default})
        })
        .collect();
    let mut tables = Vec::new();
    for t in catalog.tables() {
        let q = t.qualified_name();
        let sql = format!("SELECT COUNT(*) FROM \"{}\"", q.replace('"', "\"\""));
        let rows = crate::storage::query(&conn, &sql)
            .ok()
            .and_then(|(_, r)| r.first().and_then(|r| r.first()).cloned())
            .unwrap_or(serde_json::Value::Null);
        tables.push(serde_json::json!({"name": q, "rows": rows}));
    }
    let (cols, rows) =
        crate::storage::query(&conn, "SELECT * FROM _emulator_channels ORDER BY 1,2,3,4")?;
    let channels: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|r| serde_json::Value::Object(cols.iter().cloned().zip(r).collect()))
        .collect();
    Ok(serde_json::json!({
        "database_file": dir.join(crate::storage::DB_FILE).display().to_string(),
        "pipes": pipes, "channels": channels, "tables": tables,
    }))
}
