//! The EKS control plane: create, read, in-place updates (logging, endpoint access, tags,
//! version), delete. Every wait polls with backoff until the cluster settles.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_eks::types::{LogSetup, LogType, Logging, UpdateStatus, VpcConfigRequest};
use serde_json::json;
use tessera_provider_api::{Attrs, Observed, ProviderError, ResourceSpec};

use crate::attrs::{flag, string_map, text, texts};
use crate::error::aws;
use crate::network::not_found_is_none;
use crate::wait::{Seen, until};
use crate::{Clients, EksProvider, iam, request_token};

const ALL_LOG_TYPES: [&str; 5] = ["api", "audit", "authenticator", "controllerManager", "scheduler"];

pub async fn read(c: &Clients, name: &str) -> Result<Option<Observed>, ProviderError> {
    let out = match c.eks.describe_cluster().name(name).send().await {
        Ok(o) => o,
        Err(e) => return not_found_is_none(aws("DescribeCluster", e)),
    };
    let Some(cl) = out.cluster() else { return Ok(None) };
    let mut log_types: Vec<&str> = cl
        .logging()
        .map(|l| l.cluster_logging())
        .unwrap_or_default()
        .iter()
        .filter(|s| s.enabled() == Some(true))
        .flat_map(|s| s.types().iter().map(LogType::as_str))
        .collect();
    log_types.sort_unstable();
    log_types.dedup();
    let tags: BTreeMap<&String, &String> = cl.tags().map(|t| t.iter().collect()).unwrap_or_default();
    let vpc = cl.resources_vpc_config();
    let mut attrs = Attrs::new();
    attrs.insert("name".into(), json!(cl.name()));
    attrs.insert("version".into(), json!(cl.version()));
    attrs.insert("logTypes".into(), json!(log_types));
    attrs.insert("endpointPublicAccess".into(), json!(vpc.is_some_and(|v| v.endpoint_public_access())));
    attrs.insert("endpointPrivateAccess".into(), json!(vpc.is_some_and(|v| v.endpoint_private_access())));
    attrs.insert("subnetIds".into(), json!(vpc.map(|v| v.subnet_ids()).unwrap_or_default()));
    attrs.insert("tags".into(), json!(tags));
    attrs.insert("arn".into(), json!(cl.arn()));
    attrs.insert("endpoint".into(), json!(cl.endpoint()));
    attrs.insert("certificateAuthority".into(), json!(cl.certificate_authority().and_then(|c| c.data())));
    let status = cl.status().map(|s| s.as_str().to_string()).unwrap_or_else(|| "UNKNOWN".into());
    Ok(Some(Observed { id: name.into(), status, attrs }))
}

fn logging(enabled: &[String]) -> Logging {
    let on: Vec<LogType> = enabled.iter().map(|t| LogType::from(t.as_str())).collect();
    let off: Vec<LogType> =
        ALL_LOG_TYPES.iter().filter(|t| !enabled.iter().any(|e| e == *t)).map(|t| LogType::from(*t)).collect();
    let mut b = Logging::builder();
    if !on.is_empty() {
        b = b.cluster_logging(LogSetup::builder().set_types(Some(on)).enabled(true).build());
    }
    if !off.is_empty() {
        b = b.cluster_logging(LogSetup::builder().set_types(Some(off)).enabled(false).build());
    }
    b.build()
}

/// Waits until the cluster is ACTIVE; FAILED is fatal with the cloud's own health messages.
async fn settle(p: &EksProvider, c: &Clients, name: &str) -> Result<Observed, ProviderError> {
    until(&p.poll, &format!("cluster {name}"), || async {
        let obs = read(c, name).await?.ok_or_else(|| ProviderError::NotFound(format!("cluster {name}")))?;
        match obs.status.as_str() {
            "ACTIVE" => Ok(Seen::Done(obs)),
            "FAILED" => {
                let out = c.eks.describe_cluster().name(name).send().await.map_err(|e| aws("DescribeCluster", e))?;
                let issues: Vec<String> = out
                    .cluster()
                    .and_then(|c| c.health())
                    .map(|h| h.issues().iter().filter_map(|i| i.message().map(str::to_string)).collect())
                    .unwrap_or_default();
                Err(ProviderError::Fatal(format!("cluster {name} FAILED: {}", issues.join("; "))))
            }
            other => Ok(Seen::Pending(other.to_string())),
        }
    })
    .await
}

pub async fn create(p: &EksProvider, c: &Clients, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
    let a = &spec.attrs;
    let name = text(a, "name")?;
    let subnets = crate::network::subnets_of(c, spec).await?;
    let role = iam::role_arn(c, text(a, "roleName")?).await?;
    let tags: HashMap<String, String> = string_map(a, "tags")?;
    let sent = c
        .eks
        .create_cluster()
        .name(name)
        .version(text(a, "version")?)
        .role_arn(role)
        .resources_vpc_config(
            VpcConfigRequest::builder()
                .set_subnet_ids(Some(subnets))
                .endpoint_public_access(flag(a, "endpointPublicAccess")?)
                .endpoint_private_access(flag(a, "endpointPrivateAccess")?)
                .build(),
        )
        .logging(logging(&texts(a, "logTypes")?))
        .set_tags(Some(tags))
        // The same token for the same resource: a retried create is deduplicated by EKS.
        .client_request_token(request_token(spec))
        .send()
        .await;
    if let Err(e) = sent {
        match aws("CreateCluster", e) {
            // Ours from an interrupted attempt (same address tag): adopt it. Anyone else's: refuse.
            ProviderError::Conflict(m) => {
                let existing = read(c, name).await?.ok_or_else(|| ProviderError::Conflict(m.clone()))?;
                if existing.attrs.get("tags") != spec.attrs.get("tags") {
                    return Err(ProviderError::Fatal(format!("{m} (and it is not tagged as {})", spec.address)));
                }
            }
            other => return Err(other),
        }
    }
    settle(p, c, name).await
}

pub async fn update(
    p: &EksProvider,
    c: &Clients,
    name: &str,
    spec: &ResourceSpec,
    changed: &[String],
) -> Result<Observed, ProviderError> {
    let a = &spec.attrs;
    let has = |f: &str| changed.iter().any(|c| c == f);
    if has("version") {
        let out = c
            .eks
            .update_cluster_version()
            .name(name)
            .version(text(a, "version")?)
            .client_request_token(format!("{}-v{}", request_token(spec), text(a, "version")?))
            .send()
            .await
            .map_err(|e| aws("UpdateClusterVersion", e))?;
        let id = out
            .update()
            .and_then(|u| u.id())
            .ok_or_else(|| ProviderError::Fatal("UpdateClusterVersion returned no update id".into()))?;
        wait_update(p, c, name, None, id).await?;
    }
    if has("logTypes") {
        c.eks
            .update_cluster_config()
            .name(name)
            .logging(logging(&texts(a, "logTypes")?))
            .send()
            .await
            .map_err(|e| aws("UpdateClusterConfig", e))?;
        settle(p, c, name).await?;
    }
    if has("endpointPublicAccess") || has("endpointPrivateAccess") {
        c.eks
            .update_cluster_config()
            .name(name)
            .resources_vpc_config(
                VpcConfigRequest::builder()
                    .endpoint_public_access(flag(a, "endpointPublicAccess")?)
                    .endpoint_private_access(flag(a, "endpointPrivateAccess")?)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| aws("UpdateClusterConfig", e))?;
        settle(p, c, name).await?;
    }
    if has("tags") {
        let live = read(c, name).await?.ok_or_else(|| ProviderError::NotFound(format!("cluster {name}")))?;
        retag(c, text(&live.attrs, "arn")?, spec, &live.attrs).await?;
    }
    read(c, name).await?.ok_or_else(|| ProviderError::NotFound(format!("cluster {name}")))
}

/// Converges an EKS resource's tags: untag what is no longer wanted, tag the rest.
pub async fn retag(c: &Clients, arn: &str, spec: &ResourceSpec, live: &Attrs) -> Result<(), ProviderError> {
    let want = string_map(&spec.attrs, "tags")?;
    let stale: Vec<String> = live
        .get("tags")
        .and_then(|t| t.as_object())
        .map(|m| m.keys().filter(|k| !want.contains_key(*k)).cloned().collect())
        .unwrap_or_default();
    if !stale.is_empty() {
        c.eks
            .untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(stale))
            .send()
            .await
            .map_err(|e| aws("UntagResource", e))?;
    }
    c.eks.tag_resource().resource_arn(arn).set_tags(Some(want)).send().await.map_err(|e| aws("TagResource", e))?;
    Ok(())
}

/// Waits for an asynchronous EKS update (version upgrades) to succeed.
pub async fn wait_update(
    p: &EksProvider,
    c: &Clients,
    cluster: &str,
    nodegroup: Option<&str>,
    id: &str,
) -> Result<(), ProviderError> {
    until(&p.poll, &format!("update {id} of {cluster}"), || async {
        let out = c
            .eks
            .describe_update()
            .name(cluster)
            .set_nodegroup_name(nodegroup.map(str::to_string))
            .update_id(id)
            .send()
            .await
            .map_err(|e| aws("DescribeUpdate", e))?;
        let update =
            out.update().ok_or_else(|| ProviderError::Fatal(format!("DescribeUpdate returned no update {id}")))?;
        match update.status() {
            Some(UpdateStatus::Successful) => Ok(Seen::Done(())),
            Some(UpdateStatus::Failed) | Some(UpdateStatus::Cancelled) => {
                let errors: Vec<String> =
                    update.errors().iter().filter_map(|e| e.error_message().map(str::to_string)).collect();
                Err(ProviderError::Fatal(format!("update {id} of {cluster} failed: {}", errors.join("; "))))
            }
            other => Ok(Seen::Pending(other.map_or("pending", |s| s.as_str()).to_string())),
        }
    })
    .await
}

pub async fn delete(p: &EksProvider, c: &Clients, name: &str) -> Result<(), ProviderError> {
    c.eks.delete_cluster().name(name).send().await.map_err(|e| aws("DeleteCluster", e))?;
    until(&p.poll, &format!("deleting cluster {name}"), || async {
        match read(c, name).await? {
            None => Ok(Seen::Done(())),
            Some(o) => Ok(Seen::Pending(o.status)),
        }
    })
    .await
}
