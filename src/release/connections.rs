//! The PostgreSQL connections a rendered release can hold at once, read from what it renders:
//! each pod's connection pools (from its environment, Dify's and the plugin daemon's defaults
//! where unset) times the most pods its workload can run (replicas, or an autoscaler's
//! maxReplicas, plus the surge pod of a rolling update), and the connections PostgreSQL keeps
//! for superusers.

use crate::manifest::{Manifest, Resource};
use serde_json::Value;

/// Dify's SQLAlchemy pool (api/configs/middleware: SQLALCHEMY_POOL_SIZE 30 and
/// SQLALCHEMY_MAX_OVERFLOW 10, as compose's db-postgres.env sets them), per process.
const SQLALCHEMY_POOL_SIZE: u32 = 30;
const SQLALCHEMY_MAX_OVERFLOW: u32 = 10;
/// The plugin daemon's pool (internal/types/app/config.go: DB_MAX_OPEN_CONNS default 30).
const DAEMON_MAX_OPEN_CONNS: u32 = 30;
/// PostgreSQL's superuser_reserved_connections default: slots ordinary users never get.
pub const SUPERUSER_RESERVED: u32 = 3;

/// One workload's share: `pods` × `per_pod` connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub component: String,
    pub pods: u32,
    pub per_pod: u32,
}

/// What the release can open, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    pub shares: Vec<Share>,
}

impl Budget {
    /// The max_connections the server needs: every share and the superuser slots.
    pub fn needed(&self) -> u32 {
        self.shares.iter().map(|s| s.pods * s.per_pod).sum::<u32>() + SUPERUSER_RESERVED
    }

    /// `api 2×40, worker 2×40, …, 3 reserved for superusers`.
    pub fn explain(&self) -> String {
        let mut parts: Vec<String> = self
            .shares
            .iter()
            .map(|s| format!("{} {}×{}", s.component, s.pods, s.per_pod))
            .collect();
        parts.push(format!("{SUPERUSER_RESERVED} reserved for superusers"));
        parts.join(", ")
    }
}

/// The literal value of a container's env var (a `valueFrom` counts as unset).
fn env<'a>(container: &'a Value, name: &str) -> Option<&'a str> {
    container["env"]
        .as_array()?
        .iter()
        .rev()
        .find(|e| e["name"] == name)?
        .get("value")?
        .as_str()
}

fn number(container: &Value, name: &str, default: u32) -> u32 {
    env(container, name)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// Connections one container can open: none without DB_HOST; the plugin daemon (no MODE) its
/// pool; the api image its SQLAlchemy pool (and Dify's pgvector pool) per process, gunicorn
/// running SERVER_WORKER_AMOUNT processes in api mode.
fn per_container(c: &Value) -> u32 {
    if env(c, "DB_HOST").is_none() {
        return 0;
    }
    let Some(mode) = env(c, "MODE") else {
        return number(c, "DB_MAX_OPEN_CONNS", DAEMON_MAX_OPEN_CONNS);
    };
    let processes = if mode == "api" {
        number(c, "SERVER_WORKER_AMOUNT", 1)
    } else {
        1
    };
    let mut pool = number(c, "SQLALCHEMY_POOL_SIZE", SQLALCHEMY_POOL_SIZE)
        + number(c, "SQLALCHEMY_MAX_OVERFLOW", SQLALCHEMY_MAX_OVERFLOW);
    if env(c, "VECTOR_STORE") == Some("pgvector") {
        pool += number(c, "PGVECTOR_MAX_CONNECTION", 5);
    }
    processes * pool
}

/// The most pods a Deployment runs: its replicas or its autoscaler's maximum, plus the surge
/// pod(s) of a rolling update (maxSurge 25%, rounded up), none with Recreate.
fn most_pods(m: &Manifest, r: &Resource) -> u32 {
    let spec = &r.body["spec"];
    let hpa_max = m
        .resources
        .iter()
        .filter(|h| h.kind == "HorizontalPodAutoscaler")
        .find(|h| h.body["spec"]["scaleTargetRef"]["name"] == r.name.as_str())
        .and_then(|h| h.body["spec"]["maxReplicas"].as_u64());
    let replicas = hpa_max.or_else(|| spec["replicas"].as_u64()).unwrap_or(1) as u32;
    let surge = if r.kind == "Deployment" && spec["strategy"]["type"] != "Recreate" {
        replicas.div_ceil(4)
    } else {
        0
    };
    replicas + surge
}

/// Every long-running workload's share (the migration Job runs alone, before the new pods).
pub fn budget(m: &Manifest) -> Budget {
    let shares = m
        .resources
        .iter()
        .filter(|r| r.kind == "Deployment" || r.kind == "StatefulSet")
        .filter_map(|r| {
            let per_pod: u32 = r.body["spec"]["template"]["spec"]["containers"]
                .as_array()?
                .iter()
                .map(per_container)
                .sum();
            (per_pod > 0).then(|| Share {
                component: r.component.clone(),
                pods: most_pods(m, r),
                per_pod,
            })
        })
        .collect();
    Budget { shares }
}

/// The bundled server's max_connections, from its `-c max_connections=N` argument.
pub fn bundled_max_connections(m: &Manifest) -> Option<u32> {
    let server = m
        .resources
        .iter()
        .find(|r| r.kind == "StatefulSet" && r.component == "postgresql")?;
    server.body["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .find_map(|a| a.strip_prefix("max_connections="))
        .and_then(|n| n.parse().ok())
}
