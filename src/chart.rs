//! The chart: `templates/`, `values.yaml`, `values.schema.json` and `versions.yaml` (the release
//! table). The copy in this repository is embedded in the binary; `--chart DIR` reads a user's
//! copy with the same layout.

use crate::versions::ReleaseTable;
use include_dir::{Dir, include_dir};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

static EMBEDDED_TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");
const EMBEDDED_VALUES: &str = include_str!("../values.yaml");
const EMBEDDED_SCHEMA: &str = include_str!("../values.schema.json");
const EMBEDDED_VERSIONS: &str = include_str!("../versions.yaml");

/// Why a chart could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the chart at {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the chart at {0} has no templates/ directory with .yaml templates")]
    NoTemplates(String),
    #[error("{path} is not UTF-8 text")]
    NotUtf8 { path: String },
    #[error(transparent)]
    Values(#[from] crate::values::Error),
    #[error("{path} is not valid JSON: {message}")]
    SchemaJson { path: String, message: String },
    #[error("{path} is not a valid JSON schema: {message}")]
    Schema { path: String, message: String },
    #[error(transparent)]
    Versions(#[from] crate::versions::Error),
}

impl Error {
    /// A chart that cannot be read or used is bad input; its values and release table decide
    /// for their own errors.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Values(e) => e.exit_code(),
            Error::Versions(e) => e.exit_code(),
            Error::Read { .. }
            | Error::NoTemplates(_)
            | Error::NotUtf8 { .. }
            | Error::SchemaJson { .. }
            | Error::Schema { .. } => crate::error::exit::INPUT,
        }
    }
}

/// Where a chart came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChartOrigin {
    Embedded,
    Directory(PathBuf),
}

/// A loaded chart. Template names are relative to `templates/` (`api.yaml`).
#[derive(Debug, Clone)]
pub struct Chart {
    pub origin: ChartOrigin,
    templates: BTreeMap<String, String>,
    pub default_values: Map<String, Value>,
    pub schema: Value,
    /// The supported Dify releases (`versions.yaml`).
    pub versions: ReleaseTable,
}

impl Chart {
    /// The chart compiled into this binary.
    pub fn embedded() -> Chart {
        crate::render::stages::time("chart: load the embedded chart", Chart::load_embedded)
    }

    fn load_embedded() -> Chart {
        let templates = EMBEDDED_TEMPLATES
            .files()
            .filter_map(|f| Some((f.path().to_str()?.to_owned(), f.contents_utf8()?.to_owned())))
            .collect();
        Chart::assemble(
            ChartOrigin::Embedded,
            templates,
            EMBEDDED_VALUES.as_bytes(),
            EMBEDDED_SCHEMA.as_bytes(),
            EMBEDDED_VERSIONS.as_bytes(),
        )
        .expect("the embedded chart is checked by the test suite")
    }

    /// A chart directory with the same layout as this repository's.
    pub fn from_dir(dir: &Path) -> Result<Chart, Error> {
        let read = |p: PathBuf| {
            crate::input::read_limited(&p, crate::input::MAX_DOCUMENT_BYTES).map_err(|source| {
                Error::Read {
                    path: p.display().to_string(),
                    source,
                }
            })
        };
        let mut templates = BTreeMap::new();
        let tdir = dir.join("templates");
        let entries = std::fs::read_dir(&tdir).map_err(|source| Error::Read {
            path: tdir.display().to_string(),
            source,
        })?;
        for entry in entries {
            let path = entry
                .map_err(|source| Error::Read {
                    path: tdir.display().to_string(),
                    source,
                })?
                .path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            if !(name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".tpl")) {
                continue;
            }
            let text = String::from_utf8(read(path.clone())?).map_err(|_| Error::NotUtf8 {
                path: path.display().to_string(),
            })?;
            templates.insert(name, text);
        }
        if !templates.keys().any(|n| is_rendered(n)) {
            return Err(Error::NoTemplates(dir.display().to_string()));
        }
        let values = read(dir.join("values.yaml"))?;
        let schema = read(dir.join("values.schema.json"))?;
        let versions = read(dir.join("versions.yaml"))?;
        Chart::assemble(
            ChartOrigin::Directory(dir.to_owned()),
            templates,
            &values,
            &schema,
            &versions,
        )
    }

    fn assemble(
        origin: ChartOrigin,
        templates: BTreeMap<String, String>,
        values: &[u8],
        schema: &[u8],
        versions: &[u8],
    ) -> Result<Chart, Error> {
        // The three documents are parsed at once (YAML parsing is most of a chart's loading).
        let (default_values, schema, versions) = std::thread::scope(|scope| {
            let versions = scope.spawn(|| ReleaseTable::parse(versions));
            let schema = scope.spawn(|| serde_json::from_slice::<Value>(schema));
            let default_values = crate::values::parse_values(values, "values.yaml");
            (
                default_values,
                schema.join().expect("the schema parser does not panic"),
                versions
                    .join()
                    .expect("the release table parser does not panic"),
            )
        });
        let default_values = default_values?;
        let schema = schema.map_err(|e| Error::SchemaJson {
            path: "values.schema.json".into(),
            message: e.to_string(),
        })?;
        let versions = versions?;
        Ok(Chart {
            origin,
            templates,
            default_values,
            schema,
            versions,
        })
    }

    /// Names of the templates that produce manifests, in a fixed order.
    pub fn rendered_template_names(&self) -> impl Iterator<Item = &str> {
        self.templates
            .keys()
            .map(String::as_str)
            .filter(|n| is_rendered(n))
    }

    /// Every template, libraries included, by name.
    pub fn templates(&self) -> impl Iterator<Item = (&str, &str)> {
        self.templates.iter().map(|(n, s)| (n.as_str(), s.as_str()))
    }

    /// `api.yaml` → `templates/api.yaml`, the form users see in messages.
    pub fn display_name_of(name: &str) -> String {
        format!("templates/{name}")
    }
}

fn is_rendered(name: &str) -> bool {
    !name.starts_with('_') && (name.ends_with(".yaml") || name.ends_with(".yml"))
}
