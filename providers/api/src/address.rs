use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a resource lives in the fleet: `placement/type/name`, e.g. `aws-eu/eks.cluster/main`.
///
/// Addresses are the primary key of state and plans, so they are stable across runs and never
/// contain cloud-assigned identifiers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Address {
    pub placement: String,
    pub rtype: String,
    pub name: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid resource address `{0}`: expected `placement/type/name`")]
pub struct AddressError(pub String);

impl Address {
    pub fn new(placement: impl Into<String>, rtype: impl Into<String>, name: impl Into<String>) -> Self {
        Self { placement: placement.into(), rtype: rtype.into(), name: name.into() }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.placement, self.rtype, self.name)
    }
}

impl FromStr for Address {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.splitn(3, '/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(p), Some(t), Some(n)) if !p.is_empty() && !t.is_empty() && !n.is_empty() && !n.contains('/') => {
                Ok(Self::new(p, t, n))
            }
            _ => Err(AddressError(s.to_string())),
        }
    }
}

impl TryFrom<String> for Address {
    type Error = AddressError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Address> for String {
    fn from(a: Address) -> String {
        a.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        let a: Address = "aws-eu/eks.cluster/main".parse().unwrap();
        assert_eq!(a.placement, "aws-eu");
        assert_eq!(a.rtype, "eks.cluster");
        assert_eq!(a.to_string(), "aws-eu/eks.cluster/main");
    }

    #[test]
    fn rejects_malformed_addresses() {
        for bad in ["", "a/b", "a//c", "/b/c", "a/b/c/d"] {
            assert!(bad.parse::<Address>().is_err(), "{bad} should be rejected");
        }
    }
}
