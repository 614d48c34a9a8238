//! Where the simulated cloud keeps its resources: in memory, or in a SQLite file so that a
//! restarted process (or a second one) sees the same cloud.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use tessera_provider_api::{Attrs, CloudId};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimResource {
    pub id: CloudId,
    pub rtype: String,
    pub status: String,
    pub attrs: Attrs,
    /// When a transition in progress completes (unix ms), even if the process that started it
    /// is gone: the cloud carries on without its client, as real clouds do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settles_at: Option<u64>,
    /// Attributes an update in progress will have set once it settles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Attrs>,
    /// The Kubernetes `version` a control plane or node pool was created with, kept with it (so
    /// the durable store keeps it too) to tell an upgraded one from a new one
    /// ([`crate::SimCloud::set_unhealthy_after_upgrade`]). `None` for everything else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_version: Option<String>,
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default()
}

/// The resource as the cloud shows it now: a transition past its deadline has completed, and a
/// finished deletion leaves nothing.
fn settled(mut r: SimResource) -> Option<SimResource> {
    match r.settles_at {
        Some(t) if t <= now_ms() => {
            r.settles_at = None;
            if r.status == "DELETING" {
                return None;
            }
            if let Some(p) = r.pending.take() {
                r.attrs.extend(p);
            }
            r.status = "ACTIVE".into();
            Some(r)
        }
        _ => Some(r),
    }
}

impl SimResource {
    /// The `tessera.dev/address` tag, if the resource carries one.
    pub fn address_tag(&self) -> Option<&str> {
        self.attrs.get("tags")?.get(tessera_provider_api::TAG_ADDRESS)?.as_str()
    }

    /// The placement of its address tag (`<placement>/<type>/<name>`), if it carries one.
    pub fn placement(&self) -> Option<&str> {
        self.address_tag()?.split('/').next().filter(|p| !p.is_empty())
    }

    /// Its Kubernetes `version` is no longer the one it was created with: an update (or a
    /// console edit) changed it.
    pub fn upgraded(&self) -> bool {
        self.created_version.is_some()
            && self.attrs.get("version").and_then(serde_json::Value::as_str) != self.created_version.as_deref()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sim cloud file: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("sim cloud file holds a corrupt resource row: {0}")]
    Corrupt(#[from] serde_json::Error),
}

pub(crate) enum Store {
    Memory {
        next_id: u64,
        resources: BTreeMap<CloudId, SimResource>,
        /// Ids by their address tag: creates look themselves up on every call, and a scan of
        /// the whole cloud each time would make a large apply quadratic.
        by_address: HashMap<String, BTreeSet<CloudId>>,
    },
    File(Connection),
}

impl Store {
    pub(crate) fn memory() -> Self {
        Self::Memory { next_id: 1, resources: BTreeMap::new(), by_address: HashMap::new() }
    }

    pub(crate) fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=NORMAL;
             CREATE TABLE IF NOT EXISTS resources (id TEXT PRIMARY KEY, body TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS ids (n INTEGER PRIMARY KEY AUTOINCREMENT, unused INTEGER);",
        )?;
        Ok(Self::File(conn))
    }

    pub(crate) fn next_id(&mut self, prefix: &str) -> Result<CloudId, StoreError> {
        let n = match self {
            Self::Memory { next_id, .. } => {
                let n = *next_id;
                *next_id += 1;
                n
            }
            Self::File(conn) => {
                conn.execute("INSERT INTO ids (unused) VALUES (0)", [])?;
                u64::try_from(conn.last_insert_rowid()).unwrap_or_default()
            }
        };
        Ok(format!("{prefix}-{n:06}"))
    }

    /// The resource as the cloud shows it now ([`settled`]): an operation whose process died
    /// still finishes on time, as a real cloud's does.
    pub(crate) fn get(&self, id: &str) -> Result<Option<SimResource>, StoreError> {
        let stored = match self {
            Self::Memory { resources, .. } => resources.get(id).cloned(),
            Self::File(conn) => {
                let body: Option<String> =
                    conn.query_row("SELECT body FROM resources WHERE id = ?1", [id], |r| r.get(0)).optional()?;
                body.map(|b| serde_json::from_str(&b)).transpose()?
            }
        };
        Ok(stored.and_then(settled))
    }

    pub(crate) fn put(&mut self, r: &SimResource) -> Result<(), StoreError> {
        match self {
            Self::Memory { resources, by_address, .. } => {
                if let Some(address) = r.address_tag() {
                    by_address.entry(address.to_string()).or_default().insert(r.id.clone());
                }
                resources.insert(r.id.clone(), r.clone());
            }
            Self::File(conn) => {
                conn.execute(
                    "INSERT INTO resources (id, body) VALUES (?1, ?2)
                     ON CONFLICT(id) DO UPDATE SET body = excluded.body",
                    params![r.id, serde_json::to_string(r)?],
                )?;
            }
        }
        Ok(())
    }

    pub(crate) fn remove(&mut self, id: &str) -> Result<(), StoreError> {
        match self {
            Self::Memory { resources, by_address, .. } => {
                if let Some(address) = resources.remove(id).as_ref().and_then(SimResource::address_tag) {
                    by_address.get_mut(address).map(|ids| ids.remove(id));
                }
            }
            Self::File(conn) => {
                conn.execute("DELETE FROM resources WHERE id = ?1", [id])?;
            }
        }
        Ok(())
    }

    /// The id of the first live resource that `matches`, without copying the cloud.
    pub(crate) fn find_id(&self, matches: impl Fn(&SimResource) -> bool) -> Result<Option<CloudId>, StoreError> {
        match self {
            Self::Memory { resources, .. } => Ok(resources
                .values()
                .filter(|r| matches(r))
                .find_map(|r| settled(r.clone()).filter(|r| matches(r)).map(|r| r.id))),
            Self::File(_) => Ok(self.all()?.into_iter().find(|r| matches(r)).map(|r| r.id)),
        }
    }

    /// The resources tagged with `address`, settled, oldest first.
    pub(crate) fn tagged(&self, address: &str) -> Result<Vec<SimResource>, StoreError> {
        match self {
            Self::Memory { resources, by_address, .. } => Ok(by_address
                .get(address)
                .into_iter()
                .flatten()
                .filter_map(|id| resources.get(id).cloned())
                .filter_map(settled)
                .collect()),
            Self::File(conn) => {
                let mut stmt = conn.prepare(
                    "SELECT body FROM resources
                     WHERE json_extract(body, '$.attrs.tags.\"tessera.dev/address\"') = ?1 ORDER BY id",
                )?;
                let rows = stmt.query_map([address], |r| r.get::<_, String>(0))?;
                let mut out = Vec::new();
                for body in rows {
                    out.extend(settled(serde_json::from_str(&body?)?));
                }
                Ok(out)
            }
        }
    }

    pub(crate) fn all(&self) -> Result<Vec<SimResource>, StoreError> {
        match self {
            Self::Memory { resources, .. } => Ok(resources.values().cloned().filter_map(settled).collect()),
            Self::File(conn) => {
                let mut stmt = conn.prepare("SELECT body FROM resources ORDER BY id")?;
                let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
                let mut out = Vec::new();
                for body in rows {
                    out.extend(settled(serde_json::from_str(&body?)?));
                }
                Ok(out)
            }
        }
    }
}
