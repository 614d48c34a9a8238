//! The resource group Tessera owns when a placement names none (Resources API 2021-04-01).
//! Groups are created synchronously; their delete is a long-running operation (202 + `Location`).

use reqwest::Method;
use serde_json::{Value, json};
use tessera_provider_api::{Attrs, CloudId, Observed, ProviderError, ResourceSpec};

use crate::arm::{Condition, Ends};
use crate::model::{ResourceGroup, Tags};
use crate::{AksProvider, fatal_attrs, not_ours, ours};

pub const GROUPS_API: &str = "2021-04-01";

pub fn id(subscription: &str, name: &str) -> String {
    format!("/subscriptions/{subscription}/resourcegroups/{name}")
}

pub async fn read(aks: &AksProvider, id: &str) -> Result<Option<Observed>, ProviderError> {
    let Some(reply) = aks.arm.get(id, GROUPS_API).await? else { return Ok(None) };
    let group: ResourceGroup =
        serde_json::from_value(reply.body).map_err(|e| fatal_attrs("the resource group answer", e))?;
    let mut attrs = Attrs::new();
    // ARM names the group in its answer; failing that, the id's last part is its name (`rsplit`
    // yields at least one part, so that default is never taken).
    attrs.insert(
        "name".into(),
        json!(group.name.clone().unwrap_or_else(|| id.rsplit('/').next().unwrap_or_default().into())),
    );
    attrs.insert("location".into(), group.location.clone().into());
    // ARM leaves `tags` out of an untagged group: absent is no tags.
    attrs.insert("tags".into(), json!(group.tags.clone().unwrap_or_default()));
    // The status, not an attribute: none reported reads as settled (see `types::recover`).
    let status = group.properties.and_then(|p| p.provisioning_state).unwrap_or_default();
    Ok(Some(Observed { id: id.to_string(), status, attrs }))
}

fn body(spec: &ResourceSpec) -> Result<(String, Value), ProviderError> {
    let text = |k: &str| {
        spec.attrs
            .get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| fatal_attrs("the resource group", format!("no `{k}`")))
    };
    let tags = spec.attrs.get("tags").cloned().ok_or_else(|| fatal_attrs("the resource group", "no `tags`"))?;
    let tags: Tags = serde_json::from_value(tags).map_err(|e| fatal_attrs("the resource group's tags", e))?;
    let group = ResourceGroup { location: text("location")?, tags: Some(tags), ..ResourceGroup::default() };
    Ok((text("name")?, serde_json::to_value(group).map_err(|e| fatal_attrs("the resource group body", e))?))
}

/// Creates the group, or adopts ours; a group of the same name that is not ours is refused.
pub async fn create(aks: &AksProvider, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
    let (name, body) = body(spec)?;
    let id = id(&aks.subscription, &name);
    if let Some(live) = read(aks, &id).await? {
        if !ours(spec, &live.attrs) {
            return Err(not_ours(spec, &format!("resource group {name}")));
        }
        return Ok(live);
    }
    match aks.arm.send(Method::PUT, &id, GROUPS_API, Some(&body), Condition::Absent).await {
        Ok(_) => {}
        // Made between the read and the PUT: ours (a repeat) is adopted, anyone else's refused.
        Err(ProviderError::Conflict(_)) => {
            let live = read(aks, &id).await?.ok_or_else(|| ProviderError::Conflict(format!("{id} is changing")))?;
            if !ours(spec, &live.attrs) {
                return Err(not_ours(spec, &format!("resource group {name}")));
            }
        }
        Err(e) => return Err(e),
    }
    read(aks, &id).await?.ok_or(ProviderError::NotFound(id))
}

/// Tags are the only field changed in place.
pub async fn update(aks: &AksProvider, spec: &ResourceSpec, id: &CloudId) -> Result<Observed, ProviderError> {
    let (_, body) = body(spec)?;
    aks.arm.send(Method::PUT, id, GROUPS_API, Some(&body), Condition::None).await?;
    read(aks, id).await?.ok_or_else(|| ProviderError::NotFound(id.clone()))
}

pub async fn delete(aks: &AksProvider, id: &CloudId) -> Result<(), ProviderError> {
    let reply = aks.arm.send(Method::DELETE, id, GROUPS_API, None, Condition::None).await?;
    match aks.arm.settle(&reply, id, GROUPS_API, &format!("deleting resource group {id}")).await? {
        Ends::Gone => Ok(()),
        Ends::Settled => Err(ProviderError::Conflict(format!("resource group {id} is still there after its delete"))),
    }
}
