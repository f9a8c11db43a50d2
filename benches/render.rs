//! Criterion benchmark of a whole render of the NKP example: values parsed and merged, schema
//! validated, templates rendered, output parsed back and type-checked, YAML stream written.

use criterion::{Criterion, criterion_group, criterion_main};
use difyrender::chart::Chart;
use difyrender::release::{ReleaseSpec, render_release};
use difyrender::render::Release;
use difyrender::values::ValueSources;
use std::hint::black_box;
use std::path::PathBuf;

fn spec() -> ReleaseSpec {
    ReleaseSpec {
        chart: Chart::embedded(),
        sources: ValueSources {
            files: vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/nkp.values.yaml")],
            ..Default::default()
        },
        secret_key_file: None,
        master_key_env: Some("bench-master-key-0123456789abcdef".into()),
        release: Release {
            name: "dify".into(),
            namespace: "dify".into(),
        },
        injected: Default::default(),
        allow_unknown_release: false,
    }
}

fn bench(c: &mut Criterion) {
    let spec = spec();
    c.bench_function(
        "render nkp example (values + schema + templates + typed check)",
        |b| b.iter(|| black_box(render_release(black_box(&spec)).unwrap())),
    );
    c.bench_function("render nkp example to a YAML stream", |b| {
        b.iter(|| {
            black_box(
                render_release(black_box(&spec))
                    .unwrap()
                    .manifest
                    .to_yaml_stream(),
            )
        })
    });
    c.bench_function("load the embedded chart", |b| {
        b.iter(|| black_box(Chart::embedded()))
    });
    // The stages of a render, to see where time goes.
    let chart = Chart::embedded();
    c.bench_function("stage: compile the values schema", |b| {
        b.iter(|| black_box(difyrender::values::ValuesSchema::compile(&chart.schema).unwrap()))
    });
    let rendered = render_release(&spec).unwrap();
    let schema = difyrender::values::ValuesSchema::compile(&chart.schema).unwrap();
    c.bench_function("stage: validate values", |b| {
        b.iter(|| {
            schema
                .validate(black_box(&rendered.values), &Default::default())
                .unwrap()
        })
    });
    c.bench_function("stage: render templates", |b| {
        b.iter(|| {
            black_box(
                difyrender::render::render(
                    &chart,
                    &rendered.values,
                    &rendered.keys,
                    &rendered.release,
                    &rendered.dify,
                )
                .unwrap(),
            )
        })
    });
    let texts = difyrender::render::render(
        &chart,
        &rendered.values,
        &rendered.keys,
        &rendered.release,
        &rendered.dify,
    )
    .unwrap();
    c.bench_function("stage: parse and type-check manifests", |b| {
        b.iter(|| black_box(difyrender::manifest::Manifest::from_rendered(&texts).unwrap()))
    });
    c.bench_function("stage: parse rendered YAML only", |b| {
        b.iter(|| {
            for t in &texts {
                black_box(difyrender::yaml::from_str_multiple(&t.text).unwrap());
            }
        })
    });
    c.bench_function("stage: write the YAML stream", |b| {
        b.iter(|| black_box(rendered.manifest.to_yaml_stream()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
