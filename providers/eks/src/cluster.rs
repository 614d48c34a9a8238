//! The EKS control plane: create, read, in-place updates (logging, endpoint access, tags,
//! version), delete. Every wait polls with backoff until the cluster settles.
//!
//! The role ARN and the subnet ids arrive resolved (references to the role's `arn` and the
//! subnets' `id`), and `read` reports them under the same names, `roleArn` and `subnetIds`, in
//! the order EKS keeps them (the order they were given in), so a settled cluster plans clean.
//! The name is unique per region: a replacement deletes the old cluster first.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_eks::types::{Cluster, ClusterStatus, LogSetup, LogType, Logging, UpdateStatus, VpcConfigRequest};
use serde_json::json;
use tessera_provider_api::{Attrs, Observed, ProviderError, ResourceSpec, TAGS_ATTR};

use crate::attrs::{about, flag, string_map, text, texts};
use crate::error::aws;
use crate::network::not_found_is_none;
use crate::wait::{Seen, until};
use crate::{Clients, EksProvider, not_ours, ours, request_token};

const ALL_LOG_TYPES: [&str; 5] = ["api", "audit", "authenticator", "controllerManager", "scheduler"];

async fn describe(c: &Clients, name: &str) -> Result<Option<Cluster>, ProviderError> {
    match c.eks.describe_cluster().name(name).send().await {
        Ok(out) => Ok(out.cluster().cloned()),
        Err(e) => not_found_is_none(aws("DescribeCluster", e)),
    }
}

pub async fn read(c: &Clients, name: &str) -> Result<Option<Observed>, ProviderError> {
    Ok(describe(c, name).await?.map(|cl| observed(&cl, name)))
}

/// What `read` reports of a cluster, from DescribeCluster's (or CreateCluster's) response.
fn observed(cl: &Cluster, name: &str) -> Observed {
    // No logging setup means none enabled: EKS ships no control-plane logs by default.
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
    // EKS leaves `tags` out of an untagged cluster's description: absent is no tags.
    let tags: BTreeMap<&String, &String> = cl.tags().map(|t| t.iter().collect()).unwrap_or_default();
    let vpc = cl.resources_vpc_config();
    let mut attrs = Attrs::new();
    attrs.insert("name".into(), json!(cl.name()));
    attrs.insert("version".into(), json!(cl.version()));
    attrs.insert("logTypes".into(), json!(log_types));
    // Without a VPC configuration in the answer, its values are absent (null), never `false` or
    // empty: the schema check names them, rather than plan them as drift.
    attrs.insert("endpointPublicAccess".into(), json!(vpc.map(|v| v.endpoint_public_access())));
    attrs.insert("endpointPrivateAccess".into(), json!(vpc.map(|v| v.endpoint_private_access())));
    let cidrs = vpc.map(|v| {
        let mut cidrs: Vec<&String> = v.public_access_cidrs().iter().collect();
        cidrs.sort_unstable();
        cidrs
    });
    attrs.insert("publicAccessCidrs".into(), json!(cidrs));
    attrs.insert("roleArn".into(), json!(cl.role_arn()));
    attrs.insert("subnetIds".into(), json!(vpc.map(|v| v.subnet_ids())));
    attrs.insert(TAGS_ATTR.into(), json!(tags));
    attrs.insert("arn".into(), json!(cl.arn()));
    attrs.insert("endpoint".into(), json!(cl.endpoint()));
    attrs.insert("certificateAuthority".into(), json!(cl.certificate_authority().and_then(|c| c.data())));
    let status = cl.status().map(|s| s.as_str().to_string()).unwrap_or_else(|| "UNKNOWN".into());
    Observed { id: cl.name().unwrap_or(name).into(), status, attrs }
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
        let cl = describe(c, name).await?.ok_or_else(|| ProviderError::NotFound(format!("cluster {name}")))?;
        let obs = observed(&cl, name);
        match cl.status() {
            Some(ClusterStatus::Active) => Ok(Seen::Done(obs)),
            Some(ClusterStatus::Failed) => {
                let issues: Vec<String> = cl
                    .health()
                    .map(|h| h.issues().iter().filter_map(|i| i.message().map(str::to_string)).collect())
                    .unwrap_or_default();
                Err(ProviderError::Fatal(format!("cluster {name} FAILED: {}", issues.join("; "))))
            }
            _ => Ok(Seen::Pending(obs.status)),
        }
    })
    .await
}

/// A role that was just created may not be assumable yet (IAM is eventually consistent): EKS then
/// refuses it as an invalid parameter, and the create is worth repeating.
pub(crate) fn role_not_yet_visible(e: ProviderError) -> ProviderError {
    match e {
        ProviderError::Fatal(m) if m.contains("InvalidParameterException") && m.contains("could not be assumed") => {
            ProviderError::unavailable(m)
        }
        other => other,
    }
}

pub async fn create(p: &EksProvider, c: &Clients, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
    let a = &spec.attrs;
    let name = text(a, "name")?;
    let tags: HashMap<String, String> = string_map(a, TAGS_ATTR)?;
    let sent = c
        .eks
        .create_cluster()
        .name(name)
        .version(text(a, "version")?)
        .role_arn(text(a, "roleArn")?)
        .resources_vpc_config(
            VpcConfigRequest::builder()
                .set_subnet_ids(Some(texts(a, "subnetIds")?))
                .endpoint_public_access(flag(a, "endpointPublicAccess")?)
                .endpoint_private_access(flag(a, "endpointPrivateAccess")?)
                .set_public_access_cidrs(Some(texts(a, "publicAccessCidrs")?))
                .build(),
        )
        .logging(logging(&texts(a, "logTypes")?))
        .set_tags(Some(tags))
        // The same token for the same object: a retried create is deduplicated by EKS.
        .client_request_token(request_token(spec))
        .send()
        .await;
    match sent {
        // Usable at once (moto): the response is what a read would report.
        Ok(out) => {
            if let Some(cl) = out.cluster().filter(|cl| cl.status() == Some(&ClusterStatus::Active)) {
                let made = observed(cl, name);
                if ours(spec, &made.attrs) {
                    return Ok(made);
                }
            }
        }
        Err(e) => match role_not_yet_visible(aws("CreateCluster", e)) {
            // Ours from an interrupted attempt (this generation of this address): adopt it.
            // Anyone else's, or the object this one replaces: refuse.
            ProviderError::Conflict(m) => {
                let existing = read(c, name).await?.ok_or_else(|| ProviderError::Conflict(m.clone()))?;
                if !ours(spec, &existing.attrs) {
                    return Err(not_ours(spec, &format!("EKS cluster {name}")));
                }
            }
            other => return Err(other),
        },
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
    // The three access settings go together: EKS checks them as one (never both endpoints off).
    if has("endpointPublicAccess") || has("endpointPrivateAccess") || has("publicAccessCidrs") {
        c.eks
            .update_cluster_config()
            .name(name)
            .resources_vpc_config(
                VpcConfigRequest::builder()
                    .endpoint_public_access(flag(a, "endpointPublicAccess")?)
                    .endpoint_private_access(flag(a, "endpointPrivateAccess")?)
                    .set_public_access_cidrs(Some(texts(a, "publicAccessCidrs")?))
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
    // The live tags as read (always a map, empty when untagged): unreadable ones are an error,
    // not "no tags", which would leave stale ones behind.
    let have = string_map(live, "tags").map_err(|e| about(&format!("the live tags of {arn}"), e))?;
    let stale: Vec<String> = have.into_keys().filter(|k| !want.contains_key(k)).collect();
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
