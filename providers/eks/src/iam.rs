//! The cluster and node IAM roles, with their AWS-managed policies attached.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_iam::types::Tag;
use serde_json::{Value, json};
use tessera_provider_api::{Attrs, Observed, ProviderError, ResourceSpec};

use crate::Clients;
use crate::attrs::{string_map, text, texts};
use crate::error::aws;
use crate::network::not_found_is_none;

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

pub async fn role_arn(c: &Clients, name: &str) -> Result<String, ProviderError> {
    let out = c.iam.get_role().role_name(name).send().await.map_err(|e| aws("GetRole", e))?;
    out.role().map(|r| r.arn().to_string()).ok_or_else(|| ProviderError::Fatal(format!("role {name} has no ARN")))
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

pub async fn read(c: &Clients, name: &str) -> Result<Option<Observed>, ProviderError> {
    let out = match c.iam.get_role().role_name(name).send().await {
        Ok(o) => o,
        Err(e) => return not_found_is_none(aws("GetRole", e)),
    };
    let Some(role) = out.role() else { return Ok(None) };
    let tags: BTreeMap<&str, &str> = role.tags().iter().map(|t| (t.key(), t.value())).collect();
    let mut attrs = Attrs::new();
    attrs.insert("name".into(), json!(role.role_name()));
    attrs.insert("arn".into(), json!(role.arn()));
    attrs.insert("policies".into(), json!(attached(c, name).await?));
    attrs.insert("tags".into(), json!(tags));
    Ok(Some(Observed { id: name.into(), status: "ACTIVE".into(), attrs }))
}

pub async fn create(c: &Clients, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
    let name = text(&spec.attrs, "name")?;
    let created = c
        .iam
        .create_role()
        .role_name(name)
        .assume_role_policy_document(trust_policy(text(&spec.attrs, "service")?))
        .set_tags(Some(iam_tags(spec)?))
        .send()
        .await;
    if let Err(e) = created {
        match aws("CreateRole", e) {
            // Created by an earlier, interrupted attempt: adopt it (converge below).
            ProviderError::Fatal(m) if m.contains("EntityAlreadyExists") => {}
            other => return Err(other),
        }
    }
    converge_policies(c, name, spec).await?;
    read(c, name).await?.ok_or_else(|| ProviderError::unavailable(format!("role {name} not visible yet")))
}

pub async fn update(
    c: &Clients,
    name: &str,
    spec: &ResourceSpec,
    changed: &[String],
) -> Result<Observed, ProviderError> {
    if changed.iter().any(|f| f == "policies") {
        converge_policies(c, name, spec).await?;
    }
    if changed.iter().any(|f| f == "tags") {
        let want = string_map(&spec.attrs, "tags")?;
        let live = read(c, name).await?.map(|o| o.attrs).unwrap_or_default();
        let stale: Vec<String> = live
            .get("tags")
            .and_then(Value::as_object)
            .map(|m| m.keys().filter(|k| !want.contains_key(*k)).cloned().collect())
            .unwrap_or_default();
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

async fn converge_policies(c: &Clients, name: &str, spec: &ResourceSpec) -> Result<(), ProviderError> {
    let want: BTreeSet<String> = texts(&spec.attrs, "policies")?.into_iter().collect();
    let have = attached(c, name).await?;
    for arn in want.difference(&have) {
        c.iam
            .attach_role_policy()
            .role_name(name)
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| aws("AttachRolePolicy", e))?;
    }
    for arn in have.difference(&want) {
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
