//! Rendered text becomes checked objects: each document is parsed, checked against its typed
//! Kubernetes struct with unknown fields rejected, given a stage, and ordered. Nothing is
//! printed or applied unless every document passes.

pub mod pods;
pub mod typed;
pub mod validate;

use crate::objects::RenderedTemplate;
use crate::yaml;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt;

pub use crate::objects::{
    LABEL_COMPONENT, LABEL_INSTANCE, LABEL_MANAGED_BY, LABEL_NAME, LABEL_PART_OF, LABEL_VERSION,
    MANAGED_BY,
};

/// A DNS-1123 label of at most `max` characters: lowercase letters, digits and `-`, starting
/// and ending with a letter or digit. What namespaces, name prefixes and App IDs must be.
pub fn is_dns_label(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Components a user can select with `--show-only`.
pub const COMPONENTS: &[&str] = &[
    "namespace",
    "service-account",
    "secrets",
    "storage",
    "network-policy",
    "postgresql",
    "redis",
    "weaviate",
    "migration",
    "bootstrap",
    "api",
    "api-websocket",
    "worker",
    "beat",
    "web",
    "plugin-daemon",
    "sandbox",
    "ssrf-proxy",
    "agent-backend",
    "local-sandbox",
    "agent-ssrf-proxy",
    "ingress",
    "monitoring",
    "external-secret",
];

/// Apply stages, in order. Objects in one stage do not depend on each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    Namespace = 1,
    Config = 2,
    Datastores = 3,
    Migration = 4,
    Apps = 5,
    Routing = 6,
    /// The bootstrap Job (docs/bootstrap.md): applied once the apps are ready.
    Bootstrap = 7,
}

impl Stage {
    pub const ALL: [Stage; 7] = [
        Stage::Namespace,
        Stage::Config,
        Stage::Datastores,
        Stage::Migration,
        Stage::Apps,
        Stage::Routing,
        Stage::Bootstrap,
    ];

    /// The stage of an object of `kind` made by `component`.
    pub fn of(kind: &str, component: &str) -> Stage {
        match kind {
            "Job" if component == "bootstrap" => Stage::Bootstrap,
            "Namespace" => Stage::Namespace,
            "StatefulSet" => Stage::Datastores,
            "Job" => Stage::Migration,
            "Deployment" | "HorizontalPodAutoscaler" => Stage::Apps,
            "Ingress" | "Middleware" | "HTTPRoute" => Stage::Routing,
            _ => Stage::Config,
        }
    }

    pub fn number(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Stage::Namespace => "namespace",
            Stage::Config => "config",
            Stage::Datastores => "datastores",
            Stage::Migration => "migration",
            Stage::Apps => "apps",
            Stage::Routing => "routing",
            Stage::Bootstrap => "bootstrap",
        };
        f.write_str(name)
    }
}

/// One rendered, checked Kubernetes object.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub component: String,
    pub stage: Stage,
    /// The template that produced it, `templates/api.yaml`.
    pub template: String,
    pub body: Value,
}

impl Resource {
    /// Every container of this object's pod template, init containers first.
    pub fn containers(&self) -> impl Iterator<Item = &Value> {
        pods::containers(&self.body)
    }

    /// `Deployment/dify/dify-api`, as users see objects named in messages.
    pub fn id(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{}/{}", self.kind, ns, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }

    /// API group (`""` for the core group).
    pub fn group(&self) -> &str {
        self.api_version
            .rsplit_once('/')
            .map(|(g, _)| g)
            .unwrap_or("")
    }

    /// The object as a typed k8s-openapi struct.
    pub fn to_typed<K: DeserializeOwned>(&self) -> Result<K, serde_json::Error> {
        serde_json::from_value(self.body.clone())
    }

    /// The object as YAML.
    pub fn to_yaml(&self) -> String {
        yaml::to_string(&self.body)
    }
}

/// Why rendered output was refused. Each names the template, the object and the field.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
}

impl Error {
    /// A template or rendered object the chart refuses is bad input.
    pub fn exit_code(&self) -> u8 {
        crate::error::exit::INPUT
    }

    /// Names in each problem the value keys (found in the user's `values`) that set the
    /// refused field, where they can be found.
    pub fn with_value_keys(self, values: &Value) -> Self {
        let Error::Invalid(mut problems) = self;
        for p in &mut problems {
            if let Some(needle) = &p.needle {
                p.value_keys = validate::locate(values, needle);
            }
        }
        Error::Invalid(problems)
    }
}

/// Most bytes of one object the API server stores (etcd's default request limit).
pub const MAX_OBJECT_BYTES: usize = 1536 * 1024;

/// One problem in the rendered output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub template: String,
    /// The object, when it could be identified.
    pub object: Option<String>,
    pub message: String,
    /// What to look for in the values to name the key that set the refused field.
    pub needle: Option<validate::Needle>,
    /// The value keys that set it, when they could be found.
    pub value_keys: Vec<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.object {
            Some(o) => write!(f, "{} in {}: {}", o, self.template, self.message)?,
            None => write!(f, "{}: {}", self.template, self.message)?,
        }
        if !self.value_keys.is_empty() {
            write!(f, " (set by value {})", self.value_keys.join(", "))?;
        }
        Ok(())
    }
}

/// The checked objects of one render, in apply order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Manifest {
    pub resources: Vec<Resource>,
}

impl Manifest {
    /// Parses and checks rendered templates. All problems are collected.
    pub fn from_rendered(templates: &[RenderedTemplate]) -> Result<Manifest, Error> {
        let mut problems = Vec::new();
        let mut resources = Vec::new();
        for (mut ok, mut bad) in parse_in_parallel(templates) {
            resources.append(&mut ok);
            problems.append(&mut bad);
        }
        let mut seen = BTreeSet::new();
        for r in &resources {
            if !seen.insert((
                r.group().to_owned(),
                r.kind.clone(),
                r.namespace.clone(),
                r.name.clone(),
            )) {
                problems.push(Problem {
                    template: r.template.clone(),
                    object: Some(r.id()),
                    message: "is rendered more than once".into(),
                    needle: None,
                    value_keys: Vec::new(),
                });
            }
        }
        // Objects too large because of one value are one problem, not one per object.
        let too_large: Vec<usize> = (0..problems.len())
            .filter(|&i| problems[i].needle == Some(validate::Needle::Largest))
            .collect();
        if too_large.len() > 1 {
            let objects: Vec<String> = too_large
                .iter()
                .filter_map(|&i| problems[i].object.clone())
                .collect();
            let first = problems[too_large[0]].clone();
            problems.retain(|p| p.needle != Some(validate::Needle::Largest));
            problems.insert(
                0,
                Problem {
                    object: Some(format!("{} objects ({}, …)", objects.len(), objects[0])),
                    message: format!(
                        "are larger than the {MAX_OBJECT_BYTES} bytes the API server stores per object"
                    ),
                    ..first
                },
            );
        }
        if !problems.is_empty() {
            return Err(Error::Invalid(problems));
        }
        resources.sort_by(|a, b| {
            (a.stage, typed::kind_rank(&a.kind), &a.name, &a.namespace).cmp(&(
                b.stage,
                typed::kind_rank(&b.kind),
                &b.name,
                &b.namespace,
            ))
        });
        Ok(Manifest { resources })
    }

    /// Only the objects of the given components.
    pub fn only_components(&self, components: &[String]) -> Manifest {
        Manifest {
            resources: self
                .resources
                .iter()
                .filter(|r| components.contains(&r.component))
                .cloned()
                .collect(),
        }
    }

    /// Objects of one stage.
    pub fn stage(&self, stage: Stage) -> impl Iterator<Item = &Resource> {
        self.resources.iter().filter(move |r| r.stage == stage)
    }

    /// The YAML stream: every document starts with `---` and names its template.
    /// The documents are written on every core, each thread a run of consecutive objects, and
    /// joined in order.
    pub fn to_yaml_stream(&self) -> String {
        let document = |r: &Resource| {
            let mut out = String::from("---\n# Source: ");
            out.push_str(&r.template);
            out.push('\n');
            out.push_str(&r.to_yaml());
            out
        };
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        if workers <= 1 || self.resources.len() < 2 {
            return self.resources.iter().map(document).collect();
        }
        let run = self.resources.len().div_ceil(workers);
        std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .resources
                .chunks(run)
                .map(|objects| {
                    scope.spawn(move || objects.iter().map(document).collect::<String>())
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a writer thread does not panic"))
                .collect()
        })
    }

    /// One file name per object for `--output-dir`, prefixed by stage so `kubectl apply -f DIR`
    /// keeps the apply order.
    pub fn file_name(r: &Resource) -> String {
        format!(
            "{}-{}-{}.yaml",
            r.stage.number(),
            r.kind.to_lowercase(),
            r.name
        )
    }
}

/// Fields the API server never lets change must not carry anything that changes with a
/// release (its version), or the next upgrade is refused: selectors and StatefulSet claim
/// templates.
fn immutable_problems(kind: &str, body: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if matches!(kind, "Deployment" | "StatefulSet")
        && body
            .pointer("/spec/selector/matchLabels")
            .and_then(|l| l.get(LABEL_VERSION))
            .is_some()
    {
        out.push(format!(
            "spec.selector must not carry {LABEL_VERSION}: a selector cannot change, and the version changes with every release"
        ));
    }
    if kind == "StatefulSet" {
        let templates = body
            .pointer("/spec/volumeClaimTemplates")
            .and_then(Value::as_array);
        for (i, t) in templates.into_iter().flatten().enumerate() {
            let meta = t.get("metadata");
            let labelled = meta
                .and_then(|m| m.get("labels"))
                .and_then(|l| l.get(LABEL_VERSION))
                .is_some();
            let annotated = meta
                .and_then(|m| m.get("annotations"))
                .and_then(Value::as_object)
                .is_some_and(|a| !a.is_empty());
            if labelled || annotated {
                out.push(format!(
                    "spec.volumeClaimTemplates[{i}] must carry neither {LABEL_VERSION} nor annotations: claim templates cannot change, and the version changes with every release"
                ));
            }
        }
    }
    out
}

/// Parses and checks one template's output.
fn parse_template(t: &RenderedTemplate) -> (Vec<Resource>, Vec<Problem>) {
    use crate::render::stages;
    let started = stages::enabled().then(std::time::Instant::now);
    let parsed = yaml::from_str_multiple(&t.text);
    if let Some(started) = started {
        stages::record(format!("parse {}", t.name), started.elapsed());
    }
    let started = stages::enabled().then(std::time::Instant::now);
    let out = check_documents(t, parsed);
    if let Some(started) = started {
        stages::record(format!("typed checks {}", t.name), started.elapsed());
    }
    out
}

fn check_documents(
    t: &RenderedTemplate,
    parsed: Result<Vec<Value>, yaml::YamlError>,
) -> (Vec<Resource>, Vec<Problem>) {
    let docs = match parsed {
        Ok(docs) => docs,
        Err(e) => {
            let message = format!("rendered YAML is invalid: {e}");
            return (
                Vec::new(),
                vec![Problem {
                    template: t.name.clone(),
                    object: None,
                    message,
                    needle: None,
                    value_keys: Vec::new(),
                }],
            );
        }
    };
    let (mut ok, mut bad) = (Vec::new(), Vec::new());
    for body in docs {
        match check(&t.name, body) {
            Ok(r) => ok.push(r),
            Err(mut p) => bad.append(&mut p),
        }
    }
    (ok, bad)
}

/// [`parse_template`] for every template, spread over the CPU cores: YAML parsing is most of a
/// render's time. Results keep the templates' order.
fn parse_in_parallel(templates: &[RenderedTemplate]) -> Vec<(Vec<Resource>, Vec<Problem>)> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(templates.len());
    if workers <= 1 {
        return templates.iter().map(parse_template).collect();
    }
    // Largest first, each to the least loaded worker.
    let mut order: Vec<usize> = (0..templates.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(templates[i].text.len()));
    let mut bins: Vec<(usize, Vec<usize>)> = vec![(0, Vec::new()); workers];
    for i in order {
        let bin = bins
            .iter_mut()
            .min_by_key(|(load, _)| *load)
            .expect("at least one worker");
        bin.0 += templates[i].text.len();
        bin.1.push(i);
    }
    let mut results: Vec<Option<(Vec<Resource>, Vec<Problem>)>> = vec![None; templates.len()];
    std::thread::scope(|scope| {
        let handles: Vec<_> = bins
            .iter()
            .map(|(_, indices)| {
                scope.spawn(move || {
                    indices
                        .iter()
                        .map(|&i| (i, parse_template(&templates[i])))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for handle in handles {
            for (i, result) in handle.join().expect("a parser thread does not panic") {
                results[i] = Some(result);
            }
        }
    });
    results
        .into_iter()
        .map(|r| r.expect("every template was parsed"))
        .collect()
}

fn check(template: &str, body: Value) -> Result<Resource, Vec<Problem>> {
    let problem = |object: Option<String>, message: String| Problem {
        template: template.to_owned(),
        object,
        message,
        needle: None,
        value_keys: Vec::new(),
    };
    let Value::Object(map) = &body else {
        return Err(vec![problem(
            None,
            format!(
                "a document is {}, not a Kubernetes object",
                crate::values::type_name(&body)
            ),
        )]);
    };
    let text = |key: &str| {
        map.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let (api_version, kind) = (text("apiVersion"), text("kind"));
    let metadata = map.get("metadata");
    let name = metadata
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let namespace = metadata
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    if api_version.is_empty() || kind.is_empty() || name.is_empty() {
        return Err(vec![problem(
            None,
            "a document lacks apiVersion, kind or metadata.name".into(),
        )]);
    }
    let id = match &namespace {
        Some(ns) => format!("{kind}/{ns}/{name}"),
        None => format!("{kind}/{name}"),
    };
    // etcd's request limit (1.5 MiB by default): a larger object is refused by the server.
    let size = serde_json::to_string(&body).map_or(0, |t| t.len());
    if size > MAX_OBJECT_BYTES {
        return Err(vec![Problem {
            needle: Some(validate::Needle::Largest),
            ..problem(
                Some(id),
                format!(
                    "is {size} bytes; the API server stores at most {MAX_OBJECT_BYTES} bytes per object"
                ),
            )
        }]);
    }
    let mut problems: Vec<Problem> = typed::check(&api_version, &kind, &body)
        .into_iter()
        .chain(pods::duplicate_env(&body))
        .map(|m| problem(Some(id.clone()), m))
        .collect();
    problems.extend(
        validate::check(&kind, &body)
            .into_iter()
            .chain(pods::pod_findings(&body))
            .map(|f| Problem {
                needle: f.needle,
                ..problem(Some(id.clone()), format!("{}: {}", f.field, f.message))
            }),
    );
    let labels = metadata
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object);
    let label = |key: &str| {
        labels
            .and_then(|l| l.get(key))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    for key in [
        LABEL_NAME,
        LABEL_INSTANCE,
        LABEL_COMPONENT,
        LABEL_PART_OF,
        LABEL_VERSION,
    ] {
        if label(key).is_empty() {
            problems.push(problem(Some(id.clone()), format!("lacks the label {key}")));
        }
    }
    if label(LABEL_MANAGED_BY) != MANAGED_BY {
        problems.push(problem(
            Some(id.clone()),
            format!("must carry the label {LABEL_MANAGED_BY}={MANAGED_BY}"),
        ));
    }
    for p in immutable_problems(&kind, &body) {
        problems.push(problem(Some(id.clone()), p));
    }
    let component = label(LABEL_COMPONENT);
    if !component.is_empty() && !COMPONENTS.contains(&component.as_str()) {
        problems.push(problem(
            Some(id.clone()),
            format!(
                "has the unknown component {component:?}; known: {}",
                COMPONENTS.join(", ")
            ),
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Resource {
        stage: Stage::of(&kind, &component),
        api_version,
        kind,
        name,
        namespace,
        component,
        template: template.to_owned(),
        body,
    })
}
