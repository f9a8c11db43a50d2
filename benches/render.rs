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
}

criterion_group!(benches, bench);
criterion_main!(benches);
