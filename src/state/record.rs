//! Resource rows as stored text ↔ [`ResourceRecord`]. State files can be edited, copied or
//! truncated by hand, so decoding never trusts them: every failure is a typed error.

use super::{Intent, IntentOp, ResourceRecord, StateError};

/// The text columns of one resource row.
#[derive(Debug, Clone, Default)]
pub struct RowText {
    pub address: String,
    pub provider: String,
    pub id: String,
    pub status: String,
    pub attrs: String,
    pub deps: String,
    pub deposed: bool,
    pub schema_version: i64,
}

pub fn decode_record(row: &RowText) -> Result<ResourceRecord, StateError> {
    let corrupt = |reason: String| StateError::Corrupt { address: row.address.clone(), reason };
    Ok(ResourceRecord {
        address: row.address.parse().map_err(|e| corrupt(format!("{e}")))?,
        provider: serde_json::from_str(&row.provider).map_err(|e| corrupt(format!("provider: {e}")))?,
        id: row.id.clone(),
        status: row.status.clone(),
        attrs: serde_json::from_str(&row.attrs).map_err(|e| corrupt(format!("attrs: {e}")))?,
        deps: serde_json::from_str(&row.deps).map_err(|e| corrupt(format!("deps: {e}")))?,
        deposed: row.deposed,
        schema_version: u32::try_from(row.schema_version)
            .ok()
            .filter(|v| *v >= 1)
            .ok_or_else(|| corrupt(format!("schema version {} is not one Tessera writes", row.schema_version)))?,
    })
}

/// The columns of one intent row.
#[derive(Debug, Clone, Default)]
pub struct IntentRow {
    pub id: i64,
    pub run_id: String,
    pub address: String,
    pub op: String,
    pub cloud_id: Option<String>,
    pub provider: String,
    pub desired: Option<String>,
    pub opened_at: u64,
}

pub fn decode_intent(row: IntentRow) -> Result<Intent, StateError> {
    let corrupt = |reason: String| StateError::Corrupt { address: row.address.clone(), reason };
    let op = match row.op.as_str() {
        "create" => IntentOp::Create,
        "update" => IntentOp::Update,
        "replace" => IntentOp::Replace,
        "delete" => IntentOp::Delete,
        other => return Err(corrupt(format!("unknown intent op `{other}`"))),
    };
    Ok(Intent {
        id: row.id,
        address: row.address.parse().map_err(|e| corrupt(format!("{e}")))?,
        op,
        cloud_id: row.cloud_id.clone(),
        provider: serde_json::from_str(&row.provider).map_err(|e| corrupt(format!("intent provider: {e}")))?,
        desired: row
            .desired
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| corrupt(format!("intent spec: {e}")))?,
        opened_at: row.opened_at,
        run_id: row.run_id,
    })
}

pub(super) fn op_text(op: IntentOp) -> &'static str {
    match op {
        IntentOp::Create => "create",
        IntentOp::Update => "update",
        IntentOp::Replace => "replace",
        IntentOp::Delete => "delete",
    }
}

pub(super) fn encode_record(r: &ResourceRecord) -> RowText {
    RowText {
        address: r.address.to_string(),
        provider: serde_json::to_string(&r.provider).unwrap_or_default(),
        id: r.id.clone(),
        status: r.status.clone(),
        attrs: serde_json::to_string(&r.attrs).unwrap_or_default(),
        deps: serde_json::to_string(&r.deps).unwrap_or_default(),
        deposed: r.deposed,
        schema_version: i64::from(r.schema_version),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tessera_provider_api::ProviderRef;

    proptest! {
        #[test]
        fn decoding_arbitrary_intents_never_panics(op in ".{0,10}", provider in ".{0,60}", desired in proptest::option::of(".{0,80}")) {
            let row = IntentRow { id: 1, run_id: "r".into(), address: "a/b/c".into(), op, cloud_id: None, provider, desired, opened_at: 0 };
            let _ = decode_intent(row);
        }

        #[test]
        fn decoding_arbitrary_rows_never_panics(
            address in ".{0,40}", provider in ".{0,60}", attrs in ".{0,80}", deps in ".{0,60}",
        ) {
            let row = RowText { address, provider, id: "x".into(), status: "ACTIVE".into(), attrs, deps, deposed: false, schema_version: 1 };
            let _ = decode_record(&row);
        }
    }

    #[test]
    fn round_trips() {
        let r = ResourceRecord {
            address: "a/sim.cluster/main".parse().unwrap(),
            provider: ProviderRef { profile: Some("eks".into()), ..ProviderRef::new("sim", "eu-west-1") },
            id: "eks-cluster-000001".into(),
            status: "ACTIVE".into(),
            attrs: [("version".to_string(), serde_json::json!("1.31"))].into(),
            deps: vec!["a/sim.network/main".parse().unwrap()],
            deposed: false,
            schema_version: 1,
        };
        assert_eq!(decode_record(&encode_record(&r)).unwrap(), r);
        let mut zero = encode_record(&r);
        zero.schema_version = 0;
        assert!(matches!(decode_record(&zero), Err(StateError::Corrupt { .. })));
        let mut bad = encode_record(&r);
        bad.attrs = "{not json".into();
        assert!(matches!(decode_record(&bad), Err(StateError::Corrupt { .. })));
    }
}
