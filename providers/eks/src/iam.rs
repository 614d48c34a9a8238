//! The cluster and node IAM roles, with their AWS-managed policies attached. Role names are
//! global and unique, so a role is replaced destroy-first, and a name that is taken is adopted
//! only when its tags say it is this generation of this address.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_iam::types::{Role, Tag};
use serde_json::json;
use tessera_provider_api::{Attrs, Observed, ProviderError, ResourceSpec, TAGS_ATTR};

use crate::attrs::{about, string_map, text, texts};
use crate::error::aws;
use crate::network::not_found_is_none;
use crate::{Clients, not_ours, ours};

fn trust_policy(service: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{ "Effect": "Allow", "Principal": { "Service": service }, "Action": "sts:AssumeRole" }]
    })
    .to_string()
}

fn iam_tags(spec: &ResourceSpec) -> Result<Vec<Tag>, ProviderError> {
    string_map(&spec.attrs, "tags")?
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build().map_err(|e| ProviderError::Fatal(format!("IAM tag: {e}"))))
        .collect()
}

async fn attached(c: &Clients, name: &str) -> Result<BTreeSet<String>, ProviderError> {
    let out = c
        .iam
        .list_attached_role_policies()
        .role_name(name)
        .send()
        .await
        .map_err(|e| aws("ListAttachedRolePolicies", e))?;
    Ok(out.attached_policies().iter().filter_map(|p| p.policy_arn().map(str::to_string)).collect())
}

fn observed(role: &Role, policies: &BTreeSet<String>) -> Observed {
    let tags: BTreeMap<&str, &str> = role.tags().iter().map(|t| (t.key(), t.value())).collect();
    let mut attrs = Attrs::new();
    attrs.insert("name".into(), json!(role.role_name()));
    attrs.insert("arn".into(), json!(role.arn()));
    attrs.insert("policies".into(), json!(policies));
    attrs.insert(TAGS_ATTR.into(), json!(tags));
    Observed { id: role.role_name().into(), status: "ACTIVE".into(), attrs }
}

pub async fn read(c: &Clients, name: &str) -> Result<Option<Observed>, ProviderError> {
    let out = match c.iam.get_role().role_name(name).send().await {
        Ok(o) => o,
        Err(e) => return not_found_is_none(aws("GetRole", e)),
    };
    let Some(role) = out.role() else { return Ok(None) };
    Ok(Some(observed(role, &attached(c, name).await?)))
}

pub async fn create(c: &Clients, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
    let name = text(&spec.attrs, "name")?;
    let want: BTreeSet<String> = texts(&spec.attrs, "policies")?.into_iter().collect();
    let created = c
        .iam
        .create_role()
        .role_name(name)
        .assume_role_policy_document(trust_policy(text(&spec.attrs, "service")?))
        .set_tags(Some(iam_tags(spec)?))
        .send()
        .await;
    let made = match created {
        Ok(out) => {
            let role = out.role().ok_or_else(|| ProviderError::Fatal(format!("CreateRole returned no role {name}")))?;
            // A new role has no policies yet: attach them all, and the response (with the tags
            // it echoes) is what a read would report.
            converge_policies(c, name, &want, &BTreeSet::new()).await?;
            Some(observed(role, &want))
        }
        Err(e) => match aws("CreateRole", e) {
            // Made by an earlier, interrupted attempt: adopt it if it is ours (converge below).
            ProviderError::Fatal(m) if m.contains("EntityAlreadyExists") => None,
            other => return Err(other),
        },
    };
    if let Some(made) = made.filter(|m| ours(spec, &m.attrs)) {
        return Ok(made);
    }
    let live =
        read(c, name).await?.ok_or_else(|| ProviderError::unavailable(format!("role {name} not visible yet")))?;
    if !ours(spec, &live.attrs) {
        return Err(not_ours(spec, &format!("IAM role {name}")));
    }
    let have: BTreeSet<String> = texts(&live.attrs, "policies")?.into_iter().collect();
    converge_policies(c, name, &want, &have).await?;
    let mut live = live;
    live.attrs.insert("policies".into(), json!(want));
    Ok(live)
}

pub async fn update(
    c: &Clients,
    name: &str,
    spec: &ResourceSpec,
    changed: &[String],
) -> Result<Observed, ProviderError> {
    if changed.iter().any(|f| f == "policies") {
        let want: BTreeSet<String> = texts(&spec.attrs, "policies")?.into_iter().collect();
        converge_policies(c, name, &want, &attached(c, name).await?).await?;
    }
    if changed.iter().any(|f| f == "tags") {
        let want = string_map(&spec.attrs, "tags")?;
        // A role that is gone is NotFound, and unreadable tags an error: never "no tags", which
        // would leave stale ones behind.
        let live = read(c, name).await?.ok_or_else(|| ProviderError::NotFound(format!("role {name}")))?;
        let have = string_map(&live.attrs, "tags").map_err(|e| about(&format!("role {name}"), e))?;
        let stale: Vec<String> = have.into_keys().filter(|k| !want.contains_key(k)).collect();
        if !stale.is_empty() {
            c.iam
                .untag_role()
                .role_name(name)
                .set_tag_keys(Some(stale))
                .send()
                .await
                .map_err(|e| aws("UntagRole", e))?;
        }
        c.iam.tag_role().role_name(name).set_tags(Some(iam_tags(spec)?)).send().await.map_err(|e| aws("TagRole", e))?;
    }
    read(c, name).await?.ok_or_else(|| ProviderError::NotFound(format!("role {name}")))
}

/// Attaches what is wanted and not attached, detaches what is attached and not wanted.
async fn converge_policies(
    c: &Clients,
    name: &str,
    want: &BTreeSet<String>,
    have: &BTreeSet<String>,
) -> Result<(), ProviderError> {
    for arn in want.difference(have) {
        c.iam
            .attach_role_policy()
            .role_name(name)
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| aws("AttachRolePolicy", e))?;
    }
    for arn in have.difference(want) {
        detach(c, name, arn).await?;
    }
    Ok(())
}

async fn detach(c: &Clients, name: &str, arn: &str) -> Result<(), ProviderError> {
    c.iam.detach_role_policy().role_name(name).policy_arn(arn).send().await.map_err(|e| aws("DetachRolePolicy", e))?;
    Ok(())
}

pub async fn delete(c: &Clients, name: &str) -> Result<(), ProviderError> {
    for arn in attached(c, name).await? {
        detach(c, name, &arn).await?;
    }
    c.iam.delete_role().role_name(name).send().await.map_err(|e| aws("DeleteRole", e))?;
    Ok(())
}
