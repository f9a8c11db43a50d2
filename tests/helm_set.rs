//! A differential test of the `--set` grammar against Helm itself: a generated corpus of
//! `--set` and `--set-string` flags (fixed seed, so every run checks the same cases) goes
//! through `helm template` of a one-template chart that prints `.Values` as JSON, and through
//! difyrender's values layer; the results must be equal, and where Helm refuses a flag,
//! difyrender must refuse it too. Helm is built from its Go module by
//! `scripts/testenv build-helm` (cached in target/testenv/bin). Documented deviations (docs/development.md,
//! "Hostile input") are not generated: list nesting beyond 30 levels and the list-slot budget.

mod common;

use common::*;
use difyrender::values::{UserValues, ValueSources};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const SEED: u64 = 0x5eed_d1f7;
const CASES: usize = 300;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const NAMES: &[&str] = &[
    "a", "b", "c", "d", "e", "f", "g", "name", "x\\.y", "k8s", "Ü", "x_1", "-",
];
const VALUES: &[&str] = &[
    "1",
    "0",
    "-5",
    "+7",
    "007",
    "1.5",
    "1e3",
    "0x10",
    "9223372036854775807",
    "9223372036854775808",
    "true",
    "False",
    "null",
    "NULL",
    "",
    "x",
    "hello world",
    " 1",
    "{a,b}",
    "{1,true,null}",
    "{}",
    "{x}",
    "a\\,b",
    "b=c",
    "é",
    "\\{a}",
    "[0]",
    "yes",
];
/// Pairs that are mistakes; both must refuse them.
const BROKEN: &[&str] = &["a", "a[x]=1", "a[-1]=1", "a={x", "a[0]b=1", "a.=1"];

fn key(rng: &mut Rng) -> String {
    let mut out = String::new();
    for i in 0..1 + rng.below(3) {
        if i > 0 {
            out.push('.');
        }
        out.push_str(rng.pick(NAMES));
        for _ in 0..[0, 0, 0, 1, 1, 2][rng.below(6)] {
            out.push_str(&format!("[{}]", rng.below(4)));
        }
    }
    out
}

fn flag_value(rng: &mut Rng) -> String {
    let pairs: Vec<String> = (0..1 + rng.below(3))
        .map(|_| {
            if rng.below(25) == 0 {
                rng.pick(BROKEN).to_owned()
            } else {
                format!("{}={}", key(rng), rng.pick(VALUES))
            }
        })
        .collect();
    let mut text = pairs.join(",");
    if rng.below(30) == 0 {
        text.push(',');
    }
    text
}

/// One case: flags by type, in the order Helm applies them.
#[derive(Debug, Clone)]
struct Case {
    set: Vec<String>,
    set_string: Vec<String>,
}

/// Cases where Helm's parser keeps what it built before the input ended, which a port that
/// discards it gets wrong; always in the corpus.
const FIXED: &[&str] = &[
    "a[0]",
    "a[0].b=",
    "a[0].b=x,a[0].c=",
    "a[1][0]",
    "a.b[0]=x,a.b[0]",
    "a[0][1]=x,a[0].b=1",
    "a[70000]",
];

fn corpus() -> Vec<Case> {
    let mut rng = Rng(SEED);
    let fixed = FIXED.iter().map(|f| Case {
        set: vec![(*f).to_owned()],
        set_string: Vec::new(),
    });
    fixed
        .chain((FIXED.len()..CASES).map(|_| {
            let mut case = Case {
                set: Vec::new(),
                set_string: Vec::new(),
            };
            for _ in 0..1 + rng.below(2) {
                let v = flag_value(&mut rng);
                if rng.below(4) == 0 {
                    case.set_string.push(v);
                } else {
                    case.set.push(v);
                }
            }
            case
        }))
        .collect()
}

fn helm() -> PathBuf {
    let bin = root().join("target/testenv/bin/helm");
    if !bin.exists() {
        let status = Command::new(root().join("scripts/testenv"))
            .arg("build-helm")
            .status()
            .expect("scripts/testenv runs");
        assert!(status.success(), "scripts/testenv build-helm failed");
    }
    bin
}

fn chart(dir: &Path) -> PathBuf {
    let chart = dir.join("values-probe");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: values-probe\nversion: 0.1.0\n",
    )
    .unwrap();
    std::fs::write(
        chart.join("templates/values.yaml"),
        "{{ toJson .Values }}\n",
    )
    .unwrap();
    chart
}

/// Helm's values for a case, or `None` when Helm refuses the flags.
fn through_helm(helm: &Path, chart: &Path, case: &Case) -> Option<Value> {
    let mut cmd = Command::new(helm);
    cmd.args(["template", "probe"]).arg(chart);
    for v in &case.set {
        cmd.arg(format!("--set={v}"));
    }
    for v in &case.set_string {
        cmd.arg(format!("--set-string={v}"));
    }
    let out = cmd.output().expect("helm runs");
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("failed parsing --set"),
            "helm failed for another reason: {err}"
        );
        return None;
    }
    let text = String::from_utf8(out.stdout).unwrap();
    let json = text
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON in helm's output: {text}"));
    Some(serde_json::from_str(json).unwrap())
}

fn through_difyrender(case: &Case) -> Option<Value> {
    let sources = ValueSources {
        set: case.set.clone(),
        set_string: case.set_string.clone(),
        ..Default::default()
    };
    UserValues::load(&sources, &|_, _| {
        Err(std::io::Error::from(std::io::ErrorKind::NotFound))
    })
    .ok()
    .map(|u| Value::Object(u.merged))
}

#[test]
fn set_flags_mean_what_they_mean_to_helm() {
    let helm = helm();
    let dir = tempfile::tempdir().unwrap();
    let chart = chart(dir.path());
    let cases = corpus();
    // Two workers: helm starts in about 100 ms per case.
    let results: Vec<(usize, Option<Value>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|w| {
                let (helm, chart, cases) = (&helm, &chart, &cases);
                s.spawn(move || {
                    (w..cases.len())
                        .step_by(2)
                        .map(|i| (i, through_helm(helm, chart, &cases[i])))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let mut refused = 0;
    let mut mismatches = Vec::new();
    for (i, expected) in results {
        let case = &cases[i];
        let got = through_difyrender(case);
        refused += usize::from(expected.is_none());
        if got != expected {
            mismatches.push(format!(
                "case {i}: {case:?}\n  helm:       {}\n  difyrender: {}",
                expected.map_or("refused".into(), |v| v.to_string()),
                got.map_or("refused".into(), |v| v.to_string())
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {CASES} cases differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    eprintln!("{CASES} cases, {refused} refused by both");
    // The corpus exercises both outcomes.
    assert!(refused > 10 && refused < CASES / 2, "{refused} refused");
}
