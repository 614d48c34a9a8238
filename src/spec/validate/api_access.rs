//! `apiAccess`: who reaches a cluster's Kubernetes API. The rules every cloud shares are here;
//! each backend adds its own limits and warnings (`Backend::validate`, `SpecField::ApiAccess`).

use std::collections::HashSet;

use serde_saphyr::Location;
use tessera_provider_api::ApiAccess;

use super::super::diagnostic::Problem;
use super::super::raw::{RawApiAccess, S};
use super::Validator;

/// A checked `apiAccess`, and where it was written (for the backends' findings).
#[derive(Clone, Default)]
pub(super) struct LocatedAccess {
    pub access: ApiAccess,
    pub loc: Option<Location>,
}

impl Validator<'_> {
    pub(super) fn api_access(&mut self, raw: &S<RawApiAccess>) -> LocatedAccess {
        let r = raw.get();
        let defaults = ApiAccess::default();
        let public = r.public.as_ref().map_or(defaults.public, |p| *p.get());
        let private = r.private.as_ref().map_or(defaults.private, |p| *p.get());
        let mut allowed = defaults.allowed_cidrs;
        if let Some(list) = &r.allowed_cidrs {
            // Canonical text (`0.0.0.0/00` is `0.0.0.0/0`): what the clouds get and report back.
            allowed = list
                .get()
                .iter()
                .map(|c| c.get().parse::<ipnet::Ipv4Net>().map_or_else(|_| c.get().clone(), |n| n.to_string()))
                .collect();
            self.allowed_cidrs(list, public);
        }
        if !public && !private {
            let at = r.public.as_ref().map_or(raw.loc(), S::loc);
            self.push(
                Problem::at(at, "`apiAccess` leaves the Kubernetes API with no address: neither public nor private")
                    .help("keep `private: true` (reach it from inside the network), or `public: true` with `allowedCidrs`"),
            );
        }
        LocatedAccess { access: ApiAccess { public, allowed_cidrs: allowed, private }, loc: Some(raw.loc()) }
    }

    fn allowed_cidrs(&mut self, list: &S<Vec<S<String>>>, public: bool) {
        if !public {
            self.push(
                Problem::at(list.loc(), "`allowedCidrs` limits the public address, and `public` is false")
                    .help("drop `allowedCidrs`, or set `public: true`"),
            );
            return;
        }
        if list.get().is_empty() {
            self.push(
                Problem::at(list.loc(), "`allowedCidrs` is empty: nobody could use the public address")
                    .help("list the ranges that may reach the API, or set `public: false`"),
            );
        }
        let mut seen = HashSet::new();
        for item in list.get() {
            let text = item.get();
            match text.parse::<ipnet::Ipv4Net>() {
                Ok(net) if net.trunc() != net => self.push(
                    Problem::at(item.loc(), format!("allowed range `{text}` has host bits set"))
                        .help(format!("the range is `{}`", net.trunc())),
                ),
                Ok(net) => {
                    if !seen.insert(net) {
                        self.push(
                            Problem::at(item.loc(), format!("allowed range `{text}` is listed twice"))
                                .help("list each range once"),
                        );
                    }
                }
                Err(_) => self.push(
                    Problem::at(item.loc(), format!("invalid allowed range `{text}`"))
                        .help("use an IPv4 CIDR such as 203.0.113.0/24, or 198.51.100.7/32 for one address"),
                ),
            }
        }
    }
}
