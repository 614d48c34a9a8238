//! VPC and subnets, through EC2. Found by their `tessera.dev/address` tag, so that creating is
//! idempotent: an object that already carries the address is adopted instead of duplicated.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use serde_json::{Value, json};
use tessera_provider_api::{Attrs, Observed, ProviderError, ResourceSpec, TAG_ADDRESS, TAG_FLEET};

use crate::Clients;
use crate::attrs::{string_map, text};
use crate::error::aws;

fn ec2_tags(tags: &[Tag]) -> Value {
    let map: BTreeMap<&str, &str> = tags.iter().filter_map(|t| Some((t.key()?, t.value()?))).collect();
    json!(map)
}

fn tag_spec(kind: ResourceType, spec: &ResourceSpec) -> Result<TagSpecification, ProviderError> {
    let tags = string_map(&spec.attrs, "tags")?;
    let mut b = TagSpecification::builder().resource_type(kind);
    for (k, v) in tags {
        b = b.tags(Tag::builder().key(k).value(v).build());
    }
    Ok(b.build())
}

/// Objects Tessera made for this fleet at this address. Addresses repeat across fleets (every
/// fleet may have a placement `eu`), so the fleet tag is part of ownership.
fn owned(fleet: &str, addresses: &[String]) -> [Filter; 2] {
    [
        Filter::builder().name(format!("tag:{TAG_FLEET}")).values(fleet).build(),
        Filter::builder().name(format!("tag:{TAG_ADDRESS}")).set_values(Some(addresses.to_vec())).build(),
    ]
}

/// The fleet a desired resource belongs to, from its ownership tags.
pub fn fleet_of(spec: &ResourceSpec) -> Result<&str, ProviderError> {
    spec.attrs
        .get("tags")
        .and_then(|t| t.get(TAG_FLEET))
        .and_then(Value::as_str)
        .ok_or_else(|| ProviderError::Fatal(format!("{} carries no `{TAG_FLEET}` tag", spec.address)))
}

pub async fn read_vpc(c: &Clients, id: &str) -> Result<Option<Observed>, ProviderError> {
    let out = match c.ec2.describe_vpcs().vpc_ids(id).send().await {
        Ok(o) => o,
        Err(e) => return not_found_is_none(aws("DescribeVpcs", e)),
    };
    Ok(out.vpcs().first().map(|v| {
        let mut attrs = Attrs::new();
        attrs.insert("cidr".into(), json!(v.cidr_block().unwrap_or_default()));
        attrs.insert("tags".into(), ec2_tags(v.tags()));
        Observed { id: id.into(), status: status(v.state().map(|s| s.as_str())), attrs }
    }))
}

/// The VPC id behind a VPC's address.
pub async fn vpc_id_for(c: &Clients, fleet: &str, address: &str) -> Result<Option<String>, ProviderError> {
    let out = c
        .ec2
        .describe_vpcs()
        .set_filters(Some(owned(fleet, &[address.to_string()]).to_vec()))
        .send()
        .await
        .map_err(|e| aws("DescribeVpcs", e))?;
    Ok(out.vpcs().iter().find_map(|v| v.vpc_id().map(str::to_string)))
}

pub async fn create_vpc(c: &Clients, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
    let address = spec.address.to_string();
    let id = match vpc_id_for(c, fleet_of(spec)?, &address).await? {
        Some(existing) => existing,
        None => {
            let out = c
                .ec2
                .create_vpc()
                .cidr_block(text(&spec.attrs, "cidr")?)
                .tag_specifications(tag_spec(ResourceType::Vpc, spec)?)
                .send()
                .await
                .map_err(|e| aws("CreateVpc", e))?;
            out.vpc()
                .and_then(|v| v.vpc_id())
                .map(str::to_string)
                .ok_or_else(|| ProviderError::Fatal("CreateVpc returned no id".into()))?
        }
    };
    read_vpc(c, &id).await?.ok_or_else(|| ProviderError::unavailable(format!("VPC {id} not visible yet")))
}

pub async fn read_subnet(c: &Clients, id: &str) -> Result<Option<Observed>, ProviderError> {
    let out = match c.ec2.describe_subnets().subnet_ids(id).send().await {
        Ok(o) => o,
        Err(e) => return not_found_is_none(aws("DescribeSubnets", e)),
    };
    Ok(out.subnets().first().map(|s| {
        let mut attrs = Attrs::new();
        attrs.insert("cidr".into(), json!(s.cidr_block().unwrap_or_default()));
        attrs.insert("zone".into(), json!(s.availability_zone().unwrap_or_default()));
        attrs.insert("vpcId".into(), json!(s.vpc_id().unwrap_or_default()));
        attrs.insert("tags".into(), ec2_tags(s.tags()));
        Observed { id: id.into(), status: status(s.state().map(|s| s.as_str())), attrs }
    }))
}

/// Subnet ids behind subnet addresses, in the order given.
pub async fn subnet_ids_for(c: &Clients, fleet: &str, addresses: &[String]) -> Result<Vec<String>, ProviderError> {
    let out = c
        .ec2
        .describe_subnets()
        .set_filters(Some(owned(fleet, addresses).to_vec()))
        .send()
        .await
        .map_err(|e| aws("DescribeSubnets", e))?;
    addresses
        .iter()
        .map(|a| {
            out.subnets()
                .iter()
                .find(|s| s.tags().iter().any(|t| t.key() == Some(TAG_ADDRESS) && t.value() == Some(a.as_str())))
                .and_then(|s| s.subnet_id().map(str::to_string))
                .ok_or_else(|| ProviderError::Fatal(format!("subnet {a} does not exist; apply its network first")))
        })
        .collect()
}

/// The subnet ids a cluster or node group uses: an existing network's, as given, or ours,
/// resolved from their addresses.
pub async fn subnets_of(c: &Clients, spec: &ResourceSpec) -> Result<Vec<String>, ProviderError> {
    let given = crate::attrs::texts(&spec.attrs, "subnetIds").unwrap_or_default();
    if !given.is_empty() {
        return Ok(given);
    }
    subnet_ids_for(c, fleet_of(spec)?, &crate::attrs::texts(&spec.attrs, "subnets")?).await
}

/// The subnet behind one address, if it exists.
pub async fn subnet_id_for(c: &Clients, fleet: &str, address: &str) -> Result<Option<String>, ProviderError> {
    let out = c
        .ec2
        .describe_subnets()
        .set_filters(Some(owned(fleet, &[address.to_string()]).to_vec()))
        .send()
        .await
        .map_err(|e| aws("DescribeSubnets", e))?;
    Ok(out.subnets().iter().find_map(|s| s.subnet_id().map(str::to_string)))
}

pub async fn create_subnet(c: &Clients, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
    let address = spec.address.to_string();
    if let Some(existing) = subnet_id_for(c, fleet_of(spec)?, &address).await? {
        return read_subnet(c, &existing).await?.ok_or_else(|| ProviderError::unavailable("subnet not visible yet"));
    }
    let vpc_address = text(&spec.attrs, "vpc")?;
    let vpc_id = vpc_id_for(c, fleet_of(spec)?, vpc_address)
        .await?
        .ok_or_else(|| ProviderError::Fatal(format!("VPC {vpc_address} does not exist; apply it first")))?;
    let out = c
        .ec2
        .create_subnet()
        .vpc_id(vpc_id)
        .cidr_block(text(&spec.attrs, "cidr")?)
        .availability_zone(text(&spec.attrs, "zone")?)
        .tag_specifications(tag_spec(ResourceType::Subnet, spec)?)
        .send()
        .await
        .map_err(|e| aws("CreateSubnet", e))?;
    let id = out
        .subnet()
        .and_then(|s| s.subnet_id())
        .map(str::to_string)
        .ok_or_else(|| ProviderError::Fatal("CreateSubnet returned no id".into()))?;
    read_subnet(c, &id).await?.ok_or_else(|| ProviderError::unavailable(format!("subnet {id} not visible yet")))
}

/// VPCs and subnets change only their tags in place.
pub async fn retag(c: &Clients, id: &str, spec: &ResourceSpec, live: &Attrs) -> Result<(), ProviderError> {
    let want = string_map(&spec.attrs, "tags")?;
    let have: BTreeMap<String, String> = live
        .get("tags")
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default();
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
