//! Renders the chart's templates with minijinja.
//!
//! Rules a template author can rely on:
//! - Globals: `Values` (merged, validated values), `Release` (`name`, `namespace`), `Secrets`
//!   (master and derived keys, see [`crate::values::secrets`]), `Dify` (the release from the
//!   release table, see [`crate::versions::Resolved`]: `version`, `alembicHead`, `switches`,
//!   `celeryQueues`, `images` by component). Templates read switches, never version strings.
//! - Undefined values are errors (`SemiStrict`): printing, iterating or comparing something
//!   undefined fails with the value's path; `{% if Values.x.enabled %}` on a missing key is false.
//! - `required("a.b")` returns the value at `Values.a.b` and fails, naming the path, the
//!   template and the line, when it is missing, null or empty. All missing values are collected
//!   in one run.
//! - `fail("why")` stops with an explanation.
//! - Every `{{ … }}` prints one YAML flow node ([`escape`]): interpolate whole scalars, and
//!   build compound strings with `~` (`{{ repo ~ ":" ~ tag }}`), never `{{ repo }}:{{ tag }}`.
//! - Templates whose file name starts with `_` are libraries for `{% import %}`, not rendered.

pub mod escape;
mod labels;
pub mod stages;

use crate::chart::Chart;
use crate::values::DerivedKeys;
use minijinja::value::Value as JValue;
use minijinja::{Environment, Error as JError, ErrorKind, State, UndefinedBehavior};
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex};

/// Instructions one template may run (minijinja's fuel). The chart's largest template uses a
/// small fraction of it; a loop that never ends in a `--chart` template stops here instead of
/// hanging the command.
pub const TEMPLATE_FUEL: u64 = 50_000_000;
/// Most bytes all templates of one render may print together.
pub const MAX_RENDERED_BYTES: usize = 64 * 1024 * 1024;

/// Release identity given to templates as `Release`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Release {
    pub name: String,
    pub namespace: String,
}

/// A problem found while rendering, with the template position it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateProblem {
    pub message: String,
    /// For a missing required value, its path (`external.host`).
    pub missing: Option<String>,
    /// `templates/api.yaml:41`
    pub location: String,
}

impl fmt::Display for TemplateProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.location)
    }
}

/// Why rendering failed. Every problem of the run is listed, not just the first.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}", list(.0))]
    Missing(Vec<TemplateProblem>),
    #[error("{}", list(.0))]
    Template(Vec<TemplateProblem>),
}

impl Error {
    /// A template or rendered object the chart refuses is bad input.
    pub fn exit_code(&self) -> u8 {
        crate::error::exit::INPUT
    }

    /// Paths of the missing required values, if that is what failed.
    pub fn missing_paths(&self) -> Vec<&str> {
        match self {
            Error::Missing(p) => p.iter().filter_map(|p| p.missing.as_deref()).collect(),
            Error::Template(_) => Vec::new(),
        }
    }
}

fn list(problems: &[TemplateProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

pub use crate::objects::RenderedTemplate;

/// Shared between `required` and the driver loop: which paths are already known missing.
#[derive(Default)]
struct RequiredTracker {
    known_missing: BTreeSet<String>,
    /// Set by `required` just before it fails, read by the driver.
    failed_path: Option<String>,
}

/// Renders every non-library template of `chart`.
pub fn render(
    chart: &Chart,
    values: &serde_json::Value,
    keys: &DerivedKeys,
    release: &Release,
    dify: &crate::versions::Resolved,
) -> Result<Vec<RenderedTemplate>, Error> {
    Templates::compile(chart).render(values, keys, release, dify)
}

/// The chart's templates compiled, ready for a release's values: compiling needs no values,
/// so it can run while the values are loaded and validated.
pub struct Templates<'c> {
    chart: &'c Chart,
    env: Environment<'c>,
    tracker: Arc<Mutex<RequiredTracker>>,
    /// Templates that failed to compile.
    broken: Vec<TemplateProblem>,
}

impl<'c> Templates<'c> {
    /// Compiles every template; a syntax error is reported by [`Templates::render`], with the
    /// others.
    pub fn compile(chart: &'c Chart) -> Self {
        let tracker = Arc::new(Mutex::new(RequiredTracker::default()));
        let mut broken = Vec::new();
        let env = stages::time("template environment (compile every template)", || {
            environment(chart, tracker.clone(), &mut broken)
        });
        Templates {
            chart,
            env,
            tracker,
            broken,
        }
    }

    /// Renders every non-library template with a release's values.
    pub fn render(
        self,
        values: &serde_json::Value,
        keys: &DerivedKeys,
        release: &Release,
        dify: &crate::versions::Resolved,
    ) -> Result<Vec<RenderedTemplate>, Error> {
        let Templates {
            chart,
            mut env,
            tracker,
            broken,
        } = self;
        env.add_global("Values", JValue::from(minijinja::value::Serde(values)));
        env.add_global("Release", JValue::from(minijinja::value::Serde(release)));
        env.add_global("Secrets", JValue::from(minijinja::value::Serde(keys)));
        env.add_global("Dify", JValue::from(minijinja::value::Serde(dify)));
        render_with(chart, &env, &tracker, broken)
    }
}

fn render_with(
    chart: &Chart,
    env: &Environment<'_>,
    tracker: &Mutex<RequiredTracker>,
    mut broken: Vec<TemplateProblem>,
) -> Result<Vec<RenderedTemplate>, Error> {
    let names: Vec<&str> = chart.rendered_template_names().collect();
    // Every template at once, over the cores. When all of them render, that is the result;
    // otherwise the pass below renders them again one by one, to find every problem in a fixed
    // order (a failed `required` is retried there, which one shared tracker cannot do in
    // parallel).
    if broken.is_empty()
        && let Some(out) = render_all_at_once(env, &names)
    {
        return Ok(out);
    }
    let mut out = Vec::new();
    let mut missing = Vec::new();
    let mut printed = 0usize;
    for name in names {
        // A template that failed to compile was reported by `environment`.
        let Ok(template) = env.get_template(name) else {
            continue;
        };
        // Re-render after each missing value, now known, until the template finishes or fails
        // for another reason; each pass finds one more missing value. Templates render in
        // microseconds, and there are only a handful of required values.
        loop {
            tracker.lock().unwrap().failed_path = None;
            let started = stages::enabled().then(std::time::Instant::now);
            let result = template.render(());
            if let Some(started) = started {
                stages::record(format!("template {name}"), started.elapsed());
            }
            match result {
                Ok(text) => {
                    printed += text.len();
                    if printed > MAX_RENDERED_BYTES {
                        return Err(Error::Template(vec![TemplateProblem {
                            message: format!(
                                "the rendered output is larger than {MAX_RENDERED_BYTES} bytes; check the values that templates repeat (for example dify.extraEnv)"
                            ),
                            missing: None,
                            location: Chart::display_name_of(name),
                        }]));
                    }
                    out.push(RenderedTemplate {
                        name: Chart::display_name_of(name),
                        text,
                    });
                    break;
                }
                Err(e) => {
                    let failed = tracker.lock().unwrap().failed_path.take();
                    match failed {
                        Some(path)
                            if tracker.lock().unwrap().known_missing.insert(path.clone()) =>
                        {
                            missing.push(TemplateProblem {
                                missing: Some(path),
                                ..problem(&e)
                            });
                        }
                        _ => {
                            broken.push(problem(&e));
                            break;
                        }
                    }
                }
            }
        }
    }
    if !missing.is_empty() {
        return Err(Error::Missing(missing));
    }
    // A value every template reads fails each of them the same way: say it once.
    let mut seen = BTreeSet::new();
    broken.retain(|p| seen.insert((p.message.clone(), p.location.clone())));
    if !broken.is_empty() {
        return Err(Error::Template(broken));
    }
    Ok(out)
}

/// Renders every template on as many threads as there are cores, each thread taking the next
/// template not yet taken. `None` when any template fails or the output is too large together:
/// the one-by-one pass then says why.
fn render_all_at_once(env: &Environment<'_>, names: &[&str]) -> Option<Vec<RenderedTemplate>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(names.len());
    let next = AtomicUsize::new(0);
    let render_next = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(name) = names.get(i) else {
                return Some(done);
            };
            let started = stages::enabled().then(std::time::Instant::now);
            let text = env.get_template(name).ok()?.render(()).ok()?;
            if let Some(started) = started {
                stages::record(format!("template {name}"), started.elapsed());
            }
            done.push((i, text));
        }
    };
    let mut texts: Vec<Option<String>> = vec![None; names.len()];
    let results: Vec<Option<Vec<(usize, String)>>> = if workers <= 1 {
        vec![render_next()]
    } else {
        std::thread::scope(|scope| {
            let others: Vec<_> = (1..workers).map(|_| scope.spawn(render_next)).collect();
            let mine = render_next();
            let mut all: Vec<_> = others
                .into_iter()
                .map(|h| h.join().expect("a render thread does not panic"))
                .collect();
            all.push(mine);
            all
        })
    };
    for done in results {
        for (i, text) in done? {
            texts[i] = Some(text);
        }
    }
    let printed: usize = texts.iter().flatten().map(String::len).sum();
    if printed > MAX_RENDERED_BYTES {
        return None;
    }
    names
        .iter()
        .zip(texts)
        .map(|(name, text)| {
            Some(RenderedTemplate {
                name: Chart::display_name_of(name),
                text: text?,
            })
        })
        .collect()
}

/// A user-facing problem from a minijinja error. Only the error's own detail is used: the
/// debug dump of referenced variables would print every value, secrets included.
fn problem(e: &JError) -> TemplateProblem {
    // An error inside an imported template arrives wrapped ("could not render include");
    // the innermost one names the real template and line.
    let mut e = e;
    while let Some(inner) = std::error::Error::source(e).and_then(|s| s.downcast_ref::<JError>()) {
        e = inner;
    }
    let message = match (e.kind(), e.detail()) {
        (ErrorKind::OutOfFuel, _) => format!(
            "the template did too much work (more than {TEMPLATE_FUEL} steps): a loop that never ends, or one over far too much?"
        ),
        (ErrorKind::InvalidOperation, Some(detail)) => detail.to_owned(),
        (kind, Some(detail)) => format!("{kind}: {detail}"),
        (kind, None) => kind.to_string(),
    };
    let name = e
        .name()
        .map(Chart::display_name_of)
        .unwrap_or_else(|| "template".to_owned());
    let location = match e.line() {
        Some(line) => format!("{name}:{line}"),
        None => name,
    };
    TemplateProblem {
        message,
        missing: None,
        location,
    }
}

/// The environment with every template compiled and every function, filter and test; the
/// globals (`Values`, `Release`, `Secrets`, `Dify`) are added by [`Templates::render`].
fn environment<'c>(
    chart: &'c Chart,
    tracker: Arc<Mutex<RequiredTracker>>,
    broken: &mut Vec<TemplateProblem>,
) -> Environment<'c> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    // Debug mode makes undefined-value errors name the missing path; its cost is paid only
    // when an error is created.
    env.set_debug(true);
    env.set_auto_reload(false);
    env.set_recursion_limit(64);
    env.set_fuel(Some(TEMPLATE_FUEL));
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .expect("default delimiters are valid"),
    );
    // One escaping mode for every template, `.tpl` libraries included: it is what makes macro
    // and block-`set` output "safe" (printed as written) while every other value is escaped.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Custom("yaml".into()));
    // Every template is compiled up front; a syntax error is reported with the others.
    for (name, source) in chart.templates() {
        if let Err(e) = env.add_template(name, source) {
            broken.push(problem(&e));
        }
    }
    env.set_formatter(|out, _state, value| {
        if value.is_safe() {
            return out
                .write_str(value.as_str().unwrap_or_default())
                .map_err(JError::from);
        }
        if value.is_undefined() {
            return Err(JError::new(
                ErrorKind::UndefinedError,
                "cannot print an undefined value",
            ));
        }
        let json = serde_json::to_value(value)
            .map_err(|e| JError::new(ErrorKind::BadSerialization, e.to_string()))?;
        out.write_str(&escape::flow(&json)).map_err(JError::from)
    });
    env.add_function("required", move |state: &State, path: &str| {
        required(state, path, &tracker)
    });
    env.add_function("fail", |message: String| -> Result<JValue, JError> {
        Err(JError::new(ErrorKind::InvalidOperation, message))
    });
    env.add_function(
        "labels",
        |state: &State, component: &str, extra: Option<JValue>| -> Result<JValue, JError> {
            let mut map = labels::recommended(state, component)?;
            if let Some(extra) = extra {
                for key in extra.try_iter()? {
                    let value = extra.get_item(&key)?;
                    map.insert(key.to_string(), JValue::from(value.to_string()));
                }
            }
            Ok(JValue::from(map))
        },
    );
    env.add_function(
        "stable_labels",
        |state: &State, component: &str| -> Result<JValue, JError> {
            Ok(JValue::from(labels::stable(state, component)?))
        },
    );
    env.add_function(
        "selector_labels",
        |state: &State, component: &str| -> Result<JValue, JError> {
            Ok(JValue::from(labels::selector(state, component)?))
        },
    );
    env.add_function("merge", |a: JValue, b: JValue| -> Result<JValue, JError> {
        let mut map = std::collections::BTreeMap::new();
        for m in [&a, &b] {
            for key in m.try_iter()? {
                let value = m.get_item(&key)?;
                map.insert(key.to_string(), value);
            }
        }
        Ok(JValue::from(map))
    });
    env.add_filter("dns_label", |s: &str, max: usize| labels::dns_label(s, max));
    env.add_test("ip_address", |s: &str| {
        s.parse::<std::net::IpAddr>().is_ok()
    });
    // The host of `host[:port]` or `[ipv6][:port]`, lowercase: what an Ingress rule or a
    // route's hostname holds (the API server refuses a port or capitals there).
    env.add_filter("host_of", |s: &str| {
        let host = match s.strip_prefix('[') {
            Some(rest) => rest.split(']').next().unwrap_or_default(),
            None => s.split(':').next().unwrap_or_default(),
        };
        host.to_ascii_lowercase()
    });
    env.add_filter("sha256", |s: &str| {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(s.as_bytes()))[..16].to_owned()
    });
    // The hash of a YAML document's content, not of its text: blank lines and indentation
    // left by template edits do not change it (the migration Job's name).
    env.add_filter(
        "content_sha256",
        |s: &str| -> Result<String, minijinja::Error> {
            use sha2::Digest;
            // The text is the chart's own output, bounded by the values it repeats: no input
            // limit applies (a large dify.extraEnv is refused later, by the object's size).
            let docs = crate::yaml::from_str_multiple(s).map_err(|e| {
                minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    format!("content_sha256 of text that is not YAML: {e}"),
                )
            })?;
            let value = match <[serde_json::Value; 1]>::try_from(docs) {
                Ok([one]) => one,
                Err(docs) => serde_json::Value::Array(docs),
            };
            let canonical = serde_json::to_string(&value).expect("JSON values serialize");
            Ok(hex::encode(sha2::Sha256::digest(canonical.as_bytes()))[..16].to_owned())
        },
    );
    env.add_filter("b64encode", |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(s)
    });
    // Turns a safe string (a block `set`, macro output) back into text, so it is printed as
    // one quoted scalar: how multi-line files go into ConfigMaps.
    env.add_filter("scalar", |v: JValue| -> JValue {
        match v.as_str() {
            Some(s) => JValue::from(s.to_owned()),
            None => v,
        }
    });
    env
}

/// `required("a.b")`: the value at `Values.a.b`, or an error naming the path.
fn required(state: &State, path: &str, tracker: &Mutex<RequiredTracker>) -> Result<JValue, JError> {
    let mut value = state.lookup("Values").unwrap_or_default();
    for part in path.split('.') {
        value = value.get_attr(part).unwrap_or_default();
        if value.is_undefined() || value.is_none() {
            break;
        }
    }
    let empty = value.is_undefined() || value.is_none() || value.as_str() == Some("");
    if !empty {
        return Ok(value);
    }
    let mut tracker = tracker.lock().unwrap();
    if tracker.known_missing.contains(path) {
        // Already reported: let the render go on to find the next missing value.
        return Ok(JValue::from(""));
    }
    tracker.failed_path = Some(path.to_owned());
    Err(JError::new(
        ErrorKind::InvalidOperation,
        format!("{path} is required"),
    ))
}
