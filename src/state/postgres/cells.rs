//! ## Overview
//!
//! Typed reads of PostgreSQL state rows that never panic.
//!
//! A state database is input like any other: someone may have dropped a `NOT NULL`, changed a
//! column's type or written a negative serial by hand. Every read goes through [`Cells`], which
//! turns a NULL, a type mismatch or an out-of-range number into [`StateError::Corrupt`] naming the
//! row, the table and the column.

use tokio_postgres::Row;
use tokio_postgres::types::FromSql;

use crate::state::StateError;

/// One row of one table, with what to call it in errors.
pub struct Cells<'r> {
    row: &'r Row,
    table: &'static str,
    /// The row as people know it: a resource address, an intent id, or the table's name.
    name: String,
}

impl<'r> Cells<'r> {
    pub fn new(row: &'r Row, table: &'static str) -> Self {
        Self { row, table, name: table.to_string() }
    }

    /// Names the row by one of its own text columns (when that one is readable).
    pub fn named_by(mut self, column: &str) -> Self {
        if let Ok(Some(name)) = self.row.try_get::<_, Option<String>>(column) {
            self.name = name;
        }
        self
    }

    pub fn get<T: FromSql<'r>>(&self, column: &str) -> Result<T, StateError> {
        self.row.try_get(column).map_err(|e| {
            // The source says what was wrong (NULL, or which types clashed) without the index.
            let why = std::error::Error::source(&e).map_or_else(|| e.to_string(), ToString::to_string);
            self.corrupt(column, why)
        })
    }

    /// A `BIGINT` that counts something (a serial, a time): never negative.
    pub fn count(&self, column: &str) -> Result<u64, StateError> {
        let value: i64 = self.get(column)?;
        u64::try_from(value).map_err(|_| self.corrupt(column, format!("{value} is negative")))
    }

    fn corrupt(&self, column: &str, why: String) -> StateError {
        StateError::Corrupt { address: self.name.clone(), reason: format!("column {}.{column}: {why}", self.table) }
    }
}
