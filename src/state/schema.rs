//! The state schema's versions, and the migrations between them, for SQLite and PostgreSQL
//! alike.
//!
//! ## Overview
//!
//! A state records the schema version it was written with (`schema_version`, one row). Opening
//! it runs, in one transaction, every migration newer than that version, then records
//! [`CURRENT`]; a fresh state is made at the base schema and migrated the same way, so both kinds
//! of database always go through the same steps. A state whose version is newer than this build
//! knows is refused: an older Tessera would misread what a newer one wrote. A state written
//! before versions were recorded has the base schema: version 1.
//!
//! To change the schema, append a [`Migration`] with the next version and the statements for
//! both databases; never edit one that has shipped.

/// The version this build writes.
pub const CURRENT: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// The table that holds the version (the same on both databases).
pub const VERSION_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS schema_version (id INTEGER PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL)";

#[derive(Debug)]
pub struct Migration {
    pub version: i64,
    pub what: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

/// Every version, oldest first. Version 1 is the base schema (`SCHEMA` in each backend).
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        what: "the base schema: meta, resources, lock, intents, history, applied plans, audit, policy",
        sqlite: "",
        postgres: "",
    },
    Migration {
        version: 2,
        what: "each resource records the version of its type's schema its values have (every earlier record has \
               version 1, the only one there was)",
        sqlite: "ALTER TABLE resources ADD COLUMN schema_version INTEGER NOT NULL DEFAULT 1",
        postgres: "ALTER TABLE resources ADD COLUMN IF NOT EXISTS schema_version BIGINT NOT NULL DEFAULT 1",
    },
    Migration {
        version: 3,
        what: "where a rollout halted (one row at most, the record as JSON)",
        sqlite: "CREATE TABLE IF NOT EXISTS rollout (id INTEGER PRIMARY KEY CHECK (id = 1), record TEXT NOT NULL)",
        postgres: "CREATE TABLE IF NOT EXISTS rollout (id INTEGER PRIMARY KEY CHECK (id = 1), record TEXT NOT NULL)",
    },
];

/// The migrations to run on a state at `found` (`None`: no version recorded, the base schema),
/// or why it cannot be opened.
pub fn pending(found: Option<i64>) -> Result<Vec<&'static Migration>, String> {
    let found = found.unwrap_or(1);
    if found > CURRENT {
        return Err(format!(
            "its schema is version {found}, and this Tessera knows versions up to {CURRENT}: it was written by a newer \
             Tessera; use that one (an older one could misread it)"
        ));
    }
    if found < 1 {
        return Err(format!("its schema version {found} is not one Tessera ever wrote"));
    }
    Ok(MIGRATIONS.iter().filter(|m| m.version > found).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_consecutive_and_newer_states_are_refused() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "{}", m.what);
        }
        let after_base: Vec<i64> = MIGRATIONS[1..].iter().map(|m| m.version).collect();
        let pending_versions = |found| pending(found).unwrap().iter().map(|m| m.version).collect::<Vec<_>>();
        assert_eq!(pending_versions(None), after_base, "an unversioned state has the base schema");
        assert!(pending(Some(CURRENT)).unwrap().is_empty());
        assert!(pending(Some(CURRENT + 1)).unwrap_err().contains("newer Tessera"));
        assert!(pending(Some(0)).is_err());
    }
}
