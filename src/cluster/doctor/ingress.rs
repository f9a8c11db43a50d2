//! The ingress class and the Traefik Service.

use super::{Check, Options, unreadable};
use crate::cluster::external::{ServiceRef, address, lookup};
use crate::cluster::{Error, ResourceManager};
use crate::release::RenderedRelease;
use k8s_openapi::api::networking::v1::IngressClass;
use kube::Api;
use kube::api::ListParams;
use serde_json::Value;
use std::collections::BTreeSet;

pub(super) async fn ingress_class(
    mgr: &ResourceManager,
    rendered: &RenderedRelease,
) -> Result<Check, Error> {
    const NAME: &str = "ingress-class";
    let wanted: BTreeSet<&str> = rendered
        .manifest
        .resources
        .iter()
        .filter(|r| r.kind == "Ingress")
        .filter_map(|r| {
            r.body
                .pointer("/spec/ingressClassName")
                .and_then(Value::as_str)
        })
        .collect();
    if wanted.is_empty() {
        return Ok(Check::pass(NAME, "the render has no Ingress"));
    }
    let api: Api<IngressClass> = Api::all(mgr.client().clone());
    let all = match api.list(&ListParams::default()).await {
        Ok(l) => l.items,
        Err(e) => {
            return unreadable(
                NAME,
                "IngressClasses",
                Error::from_kube("IngressClasses", "list", e),
            );
        }
    };
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for name in wanted {
        match all
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(name))
        {
            Some(c) => found.push(format!(
                "{name} (controller {})",
                c.spec
                    .as_ref()
                    .and_then(|s| s.controller.clone())
                    .unwrap_or_default()
            )),
            None => missing.push(name),
        }
    }
    if missing.is_empty() {
        return Ok(Check::pass(
            NAME,
            format!("IngressClass {} exists", found.join(", ")),
        ));
    }
    let existing: Vec<String> = all.iter().filter_map(|c| c.metadata.name.clone()).collect();
    Ok(Check::fail(
        NAME,
        format!(
            "IngressClass {} does not exist (the cluster has: {}): no controller would serve Dify's routes",
            missing.join(", "),
            if existing.is_empty() { "none".to_owned() } else { existing.join(", ") }
        ),
    )
    .fix(format!(
        "set expose.ingressClassName to the Traefik class (NKP: {})",
        rendered.versions.nkp_traefik
    )))
}

pub(super) async fn traefik(
    mgr: &ResourceManager,
    rendered: &RenderedRelease,
    opts: &Options,
) -> Result<Check, Error> {
    const NAME: &str = "traefik";
    let host = rendered
        .values
        .pointer("/external/host")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let what = match &opts.traefik {
        ServiceRef::Named { namespace, name } => format!("Service {namespace}/{name}"),
        ServiceRef::AnyNamespace(name) => format!("a Service named {name}"),
    };
    let svc = match lookup(mgr, &opts.traefik).await {
        Ok(s) => s,
        Err(e) => return unreadable(NAME, "the Traefik Service", e),
    };
    let Some(svc) = svc else {
        return Ok(if opts.host_given {
            Check::warn(
                NAME,
                format!(
                    "{what} was not found, so doctor cannot confirm that {host} reaches Traefik"
                ),
            )
            .fix("name Traefik's Service with --traefik-service NAMESPACE/NAME")
        } else {
            Check::fail(NAME, format!("{what} was not found and external.host is not given: apply would wait for an address that never comes"))
                .fix("give --external-host (or external.host), or name Traefik's Service with --traefik-service NAMESPACE/NAME")
        });
    };
    let id = format!(
        "{}/{}",
        svc.metadata.namespace.clone().unwrap_or_default(),
        svc.metadata.name.clone().unwrap_or_default()
    );
    let Some(addr) = address(&svc) else {
        return Ok(Check::warn(
            NAME,
            format!("Service {id} has no LoadBalancer address yet (status.loadBalancer.ingress is empty)"),
        )
        .fix(if opts.host_given {
            "check that the LoadBalancer (MetalLB on NKP) assigns it an address"
        } else {
            "apply waits for it; check that the LoadBalancer (MetalLB on NKP) assigns one, or give --external-host"
        }));
    };
    if !opts.host_given || host == addr {
        return Ok(Check::pass(
            NAME,
            format!("Service {id} has the address {addr}, which external.host uses"),
        ));
    }
    if host.parse::<std::net::IpAddr>().is_err() {
        let resolved = tokio::time::timeout(
            std::time::Duration::from_secs(3),
            tokio::net::lookup_host((host.to_owned(), 443)),
        )
        .await;
        if let Ok(Ok(addrs)) = resolved {
            let ips: Vec<String> = addrs.map(|a| a.ip().to_string()).collect();
            if ips.contains(&addr) {
                return Ok(Check::pass(
                    NAME,
                    format!("Service {id} has the address {addr}, which {host} resolves to"),
                ));
            }
        }
    }
    Ok(Check::warn(
        NAME,
        format!("external.host {host} is not Service {id}'s address {addr}"),
    )
    .fix(format!("use external.host={addr}, or make sure {host} reaches Traefik (a DNS name or another load balancer)")))
}
