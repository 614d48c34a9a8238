//! VPC and subnets, through EC2. A subnet's `vpcId` arrives resolved from the VPC's `id`. Both
//! are found by their ownership tags (fleet and address, then the generation checked on what
//! comes back), so that creating is idempotent: an object that already carries this generation of
//! the address is adopted instead of duplicated, and the object it replaces never is.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{Filter, ResourceType, Subnet, Tag, TagSpecification, Vpc};
use serde_json::{Value, json};
use tessera_provider_api::{Attrs, Observed, ProviderError, ResourceSpec, TAG_ADDRESS, TAG_FLEET, TAGS_ATTR};

use crate::attrs::{about, string_map, text};
use crate::error::aws;
use crate::{Clients, ours};

fn ec2_tags(tags: &[Tag]) -> Value {
    let map: BTreeMap<&str, &str> = tags.iter().filter_map(|t| Some((t.key()?, t.value()?))).collect();
    json!(map)
}

fn tag_spec(kind: ResourceType, spec: &ResourceSpec) -> Result<TagSpecification, ProviderError> {
    let tags = string_map(&spec.attrs, TAGS_ATTR)?;
    let mut b = TagSpecification::builder().resource_type(kind);
    for (k, v) in tags {
        b = b.tags(Tag::builder().key(k).value(v).build());
    }
    Ok(b.build())
}

/// Objects Tessera made for this spec's fleet and address, any generation (EC2 cannot filter on
/// a tag being absent, which is how generation 0 is written): the caller keeps the one that is
/// [`ours`].
fn owned(spec: &ResourceSpec) -> Result<Vec<Filter>, ProviderError> {
    Ok(vec![
        Filter::builder().name(format!("tag:{TAG_FLEET}")).values(fleet_of(spec)?).build(),
        Filter::builder().name(format!("tag:{TAG_ADDRESS}")).values(spec.address.to_string()).build(),
    ])
}

/// The fleet a desired resource belongs to, from its ownership tags.
fn fleet_of(spec: &ResourceSpec) -> Result<&str, ProviderError> {
    spec.attrs
        .get(TAGS_ATTR)
        .and_then(|t| t.get(TAG_FLEET))
        .and_then(Value::as_str)
        .ok_or_else(|| ProviderError::Fatal(format!("{} carries no `{TAG_FLEET}` tag", spec.address)))
}

fn vpc_observed(v: &Vpc) -> Option<Observed> {
    let mut attrs = Attrs::new();
    // Absent values stay absent (null): the schema check names them, rather than plan an empty
    // CIDR as drift.
    attrs.insert("cidr".into(), json!(v.cidr_block()));
    attrs.insert(TAGS_ATTR.into(), ec2_tags(v.tags()));
    Some(Observed { id: v.vpc_id()?.to_string(), status: status(v.state().map(|s| s.as_str())), attrs })
}

fn subnet_observed(s: &Subnet) -> Option<Observed> {
    let mut attrs = Attrs::new();
    attrs.insert("cidr".into(), json!(s.cidr_block()));
    attrs.insert("zone".into(), json!(s.availability_zone()));
    attrs.insert("vpcId".into(), json!(s.vpc_id()));
    attrs.insert(TAGS_ATTR.into(), ec2_tags(s.tags()));
    Some(Observed { id: s.subnet_id()?.to_string(), status: status(s.state().map(|s| s.as_str())), attrs })
}

pub async fn read_vpc(c: &Clients, id: &str) -> Result<Option<Observed>, ProviderError> {
    match c.ec2.describe_vpcs().vpc_ids(id).send().await {
        Ok(out) => Ok(out.vpcs().iter().find(|v| v.vpc_id() == Some(id)).and_then(vpc_observed)),
        Err(e) => not_found_is_none(aws("DescribeVpcs", e)),
    }
}

/// This spec's VPC (this generation of its address), if it exists.
pub async fn find_vpc(c: &Clients, spec: &ResourceSpec) -> Result<Option<Observed>, ProviderError> {
    let out = c.ec2.describe_vpcs().set_filters(Some(owned(spec)?)).send().await.map_err(|e| aws("DescribeVpcs", e))?;
    Ok(out.vpcs().iter().filter_map(vpc_observed).find(|o| ours(spec, &o.attrs)))
}

pub async fn create_vpc(c: &Clients, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
    if let Some(existing) = find_vpc(c, spec).await? {
        return Ok(existing);
    }
    let out = c
        .ec2
        .create_vpc()
        .cidr_block(text(&spec.attrs, "cidr")?)
        .tag_specifications(tag_spec(ResourceType::Vpc, spec)?)
        .send()
        .await
        .map_err(|e| aws("CreateVpc", e))?;
    let made =
        out.vpc().and_then(vpc_observed).ok_or_else(|| ProviderError::Fatal("CreateVpc returned no id".into()))?;
    // The response is what a read would say, tags included; read only if it lacks them.
    if ours(spec, &made.attrs) {
        return Ok(made);
    }
    let id = made.id;
    read_vpc(c, &id).await?.ok_or_else(|| ProviderError::unavailable(format!("VPC {id} not visible yet")))
}

pub async fn read_subnet(c: &Clients, id: &str) -> Result<Option<Observed>, ProviderError> {
    match c.ec2.describe_subnets().subnet_ids(id).send().await {
        Ok(out) => Ok(out.subnets().iter().find(|s| s.subnet_id() == Some(id)).and_then(subnet_observed)),
        Err(e) => not_found_is_none(aws("DescribeSubnets", e)),
    }
}

/// This spec's subnet (this generation of its address), if it exists.
pub async fn find_subnet(c: &Clients, spec: &ResourceSpec) -> Result<Option<Observed>, ProviderError> {
    let out =
        c.ec2.describe_subnets().set_filters(Some(owned(spec)?)).send().await.map_err(|e| aws("DescribeSubnets", e))?;
    Ok(out.subnets().iter().filter_map(subnet_observed).find(|o| ours(spec, &o.attrs)))
}

pub async fn create_subnet(c: &Clients, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
    if let Some(existing) = find_subnet(c, spec).await? {
        return Ok(existing);
    }
    let out = c
        .ec2
        .create_subnet()
        .vpc_id(text(&spec.attrs, "vpcId")?)
        .cidr_block(text(&spec.attrs, "cidr")?)
        .availability_zone(text(&spec.attrs, "zone")?)
        .tag_specifications(tag_spec(ResourceType::Subnet, spec)?)
        .send()
        .await
        .map_err(|e| aws("CreateSubnet", e))?;
    let made = out
        .subnet()
        .and_then(subnet_observed)
        .ok_or_else(|| ProviderError::Fatal("CreateSubnet returned no id".into()))?;
    if ours(spec, &made.attrs) {
        return Ok(made);
    }
    let id = made.id;
    read_subnet(c, &id).await?.ok_or_else(|| ProviderError::unavailable(format!("subnet {id} not visible yet")))
}

/// VPCs and subnets change only their tags in place.
pub async fn retag(c: &Clients, id: &str, spec: &ResourceSpec, live: &Attrs) -> Result<(), ProviderError> {
    let want = string_map(&spec.attrs, TAGS_ATTR)?;
    // The live tags as read (always a map, empty when untagged): unreadable ones are an error,
    // not "no tags", which would leave stale ones behind.
    let have = string_map(live, TAGS_ATTR).map_err(|e| about(&format!("the live tags of {id}"), e))?;
    let stale: Vec<Tag> =
        have.keys().filter(|k| !want.contains_key(*k)).map(|k| Tag::builder().key(k).build()).collect();
    if !stale.is_empty() {
        c.ec2.delete_tags().resources(id).set_tags(Some(stale)).send().await.map_err(|e| aws("DeleteTags", e))?;
    }
    let tags: Vec<Tag> = want.into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
    c.ec2.create_tags().resources(id).set_tags(Some(tags)).send().await.map_err(|e| aws("CreateTags", e))?;
    Ok(())
}

pub async fn delete_vpc(c: &Clients, id: &str) -> Result<(), ProviderError> {
    c.ec2.delete_vpc().vpc_id(id).send().await.map_err(|e| aws("DeleteVpc", e))?;
    Ok(())
}

pub async fn delete_subnet(c: &Clients, id: &str) -> Result<(), ProviderError> {
    c.ec2.delete_subnet().subnet_id(id).send().await.map_err(|e| aws("DeleteSubnet", e))?;
    Ok(())
}

fn status(state: Option<&str>) -> String {
    match state {
        Some("available") | None => "ACTIVE".into(),
        Some(other) => other.to_ascii_uppercase(),
    }
}

pub(crate) fn not_found_is_none<T>(e: ProviderError) -> Result<Option<T>, ProviderError> {
    match e {
        ProviderError::NotFound(_) => Ok(None),
        other => Err(other),
    }
}
