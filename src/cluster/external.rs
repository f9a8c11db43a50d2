//! Finding the address browsers use: the Traefik LoadBalancer Service's ingress IP or host name,
//! as deploy.sh did, waiting until MetalLB assigns one.

use super::progress::Progress;
use super::{Error, ResourceManager};
use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::ListParams;
use std::time::{Duration, Instant};

/// Where to look: an explicit `namespace/name`, or the default name in any namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceRef {
    Named { namespace: String, name: String },
    AnyNamespace(String),
}

impl ServiceRef {
    pub fn parse(s: &str) -> Result<ServiceRef, Error> {
        match s.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
                Ok(ServiceRef::Named {
                    namespace: ns.to_owned(),
                    name: name.to_owned(),
                })
            }
            _ => Err(Error::Usage(format!(
                "--traefik-service must be NAMESPACE/NAME, not {s:?}"
            ))),
        }
    }

    fn describe(&self) -> String {
        match self {
            ServiceRef::Named { namespace, name } => format!("Service {namespace}/{name}"),
            ServiceRef::AnyNamespace(name) => format!("a Service named {name} in any namespace"),
        }
    }
}

pub(crate) fn address(svc: &Service) -> Option<String> {
    let ingress = svc
        .status
        .as_ref()?
        .load_balancer
        .as_ref()?
        .ingress
        .as_ref()?
        .first()?;
    ingress
        .ip
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(|| ingress.hostname.clone().filter(|s| !s.is_empty()))
}

pub(crate) async fn lookup(
    mgr: &ResourceManager,
    target: &ServiceRef,
) -> Result<Option<Service>, Error> {
    match target {
        ServiceRef::Named { namespace, name } => {
            let api: Api<Service> = Api::namespaced(mgr.client().clone(), namespace);
            api.get_opt(name)
                .await
                .map_err(|e| Error::from_kube(&format!("Service/{namespace}/{name}"), "get", e))
        }
        ServiceRef::AnyNamespace(name) => {
            let api: Api<Service> = Api::all(mgr.client().clone());
            let list = api
                .list(&ListParams::default().fields(&format!("metadata.name={name}")))
                .await
                .map_err(|e| Error::from_kube(&format!("Services named {name}"), "list", e))?;
            Ok(list.items.into_iter().next())
        }
    }
}

/// Waits for the LoadBalancer address of the Traefik Service.
pub async fn traefik_address(
    mgr: &ResourceManager,
    target: &ServiceRef,
    timeout: Duration,
    progress: &Progress,
) -> Result<String, Error> {
    let deadline = Instant::now() + timeout;
    let mut reported = None;
    loop {
        let found = lookup(mgr, target).await?;
        let state = match &found {
            None => "not found".to_owned(),
            Some(svc) => match address(svc) {
                Some(addr) => {
                    let ns = svc.metadata.namespace.clone().unwrap_or_default();
                    let name = svc.metadata.name.clone().unwrap_or_default();
                    progress.line(format!(
                        "external host: {addr} (LoadBalancer of Service {ns}/{name})"
                    ));
                    return Ok(addr);
                }
                None => {
                    "no LoadBalancer address yet (status.loadBalancer.ingress is empty)".to_owned()
                }
            },
        };
        if reported.as_ref() != Some(&state) {
            progress.line(format!("waiting for {}: {state}", target.describe()));
            reported = Some(state.clone());
        }
        if Instant::now() >= deadline {
            return Err(Error::LoadBalancer(format!(
                "timed out after {}s looking for the external address: {} has {state}. \
                 Give it with --external-host or --set external.host, or name the Service with --traefik-service NAMESPACE/NAME.",
                timeout.as_secs(),
                target.describe()
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_refs() {
        assert_eq!(
            ServiceRef::parse("kommander/kommander-traefik").unwrap(),
            ServiceRef::Named {
                namespace: "kommander".into(),
                name: "kommander-traefik".into()
            }
        );
        assert!(ServiceRef::parse("kommander-traefik").is_err());
        assert!(ServiceRef::parse("a/b/c").is_err());
    }
}
