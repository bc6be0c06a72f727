//! [`SqlTarget`]: the suite against anything a [`ClientBuilder`] reaches that has the SQL API
//! (the emulator, a Snowflake account): tables made and read back through SQL.

use async_trait::async_trait;

use super::{ConformanceTarget, Knobs, Table, TABLE_COLUMNS};
use crate::sql::SqlClient;
use crate::{ClientBuilder, StreamingIngestClient};

/// A [`ConformanceTarget`] over a [`ClientBuilder`]: clients from the builder (with a case's
/// [`Knobs`] on top), tables created and read through the SQL API in one database and schema.
/// Table names are `CONFORMANCE_<NAME>_<RUN>` (`<RUN>` random per target), so runs against
/// one account never share a table; they are left in place: point it at a scratch schema.
#[derive(Debug)]
pub struct SqlTarget {
    builder: ClientBuilder,
    sql: SqlClient,
    database: String,
    schema: String,
    run: String,
}

impl SqlTarget {
    /// A target whose clients come from `builder`, creating its tables in `database`.`schema`
    /// (which must exist).
    ///
    /// # Errors
    /// As [`ClientBuilder::build_sql`]: an invalid or missing setting.
    pub fn new(builder: ClientBuilder, database: &str, schema: &str) -> crate::Result<Self> {
        let sql = builder.clone().build_sql()?;
        let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_uppercase();
        Ok(Self {
            builder,
            sql,
            database: database.to_owned(),
            schema: schema.to_owned(),
            run,
        })
    }
}

#[async_trait]
impl ConformanceTarget for SqlTarget {
    async fn create_table(&self, name: &str) -> Table {
        let table = Table {
            database: self.database.clone(),
            schema: self.schema.clone(),
            name: format!("CONFORMANCE_{}_{}", name.to_uppercase(), self.run),
        };
        let ddl = format!(
            "CREATE TABLE IF NOT EXISTS {}.{}.{} {TABLE_COLUMNS}",
            table.database, table.schema, table.name
        );
        self.sql
            .query(&ddl)
            .await
            .unwrap_or_else(|e| panic!("{ddl}: {e}"));
        table
    }

    async fn client(&self, _: &Table, knobs: &Knobs) -> StreamingIngestClient {
        knobs
            .apply(self.builder.clone())
            .build()
            .await
            .unwrap_or_else(|e| panic!("the client connects: {e}"))
    }

    async fn ids(&self, table: &Table) -> Vec<i64> {
        let select = format!(
            "SELECT ID FROM {}.{}.{} ORDER BY ID",
            table.database, table.schema, table.name
        );
        let result = self
            .sql
            .query(&select)
            .await
            .unwrap_or_else(|e| panic!("{select}: {e}"));
        result
            .rows
            .iter()
            .map(|r| {
                let id = r.first().cloned().flatten().unwrap_or_default();
                id.parse()
                    .unwrap_or_else(|_| panic!("a numeric ID: {id:?}"))
            })
            .collect()
    }
}
