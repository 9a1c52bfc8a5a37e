//! Measures how long writing a gateway-shaped image takes (benchmarks measure, tests
//! assert).
//!
//! ```sh
//! cargo run -p mgw-builder --profile bench-fast --example oci_write_timing -- \
//!     <binary, e.g. target/x86_64-unknown-linux-musl/release/mgw-gateway> [<out dir>]
//! ```
//!
//! Writes base + binary + bundle layers, the layout and the tarball five times and
//! prints the time of each run and the sizes.

use std::time::Instant;

use mgw_builder::oci::{ImageSpec, LayerBuilder, LayerInput, OutputPaths, base, write_image};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let binary = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: oci_write_timing <binary> [<out dir>]"))?;
    let keep = args.next();
    let scratch = tempfile::tempdir()?;
    let out_dir = keep
        .map(Into::into)
        .unwrap_or_else(|| scratch.path().to_owned());
    let binary_len = std::fs::metadata(&binary)?.len();

    for run in 1..=5 {
        let start = Instant::now();
        let mut gateway = LayerBuilder::new();
        gateway.add_file_from_disk("/usr/local/bin/mgw-gateway", &binary, 0o755, 0, 0)?;
        let mut bundle = LayerBuilder::new();
        bundle.add_file_bytes(
            "/etc/mgw/bundle.json",
            br#"{"apis":[]}"#.to_vec(),
            0o444,
            0,
            0,
        )?;
        let mut spec = ImageSpec::new("example.com/petstore-gw", "1.0.0");
        spec.entrypoint = vec!["/usr/local/bin/mgw-gateway".into()];
        spec.layers = vec![
            LayerInput::new(base::base_layer_entries()?, base::BASE_LAYER_CREATED_BY),
            LayerInput::new(gateway, "mgw: gateway binary"),
            LayerInput::new(bundle, "mgw: bundle"),
        ];
        let out = write_image(
            &spec,
            &OutputPaths {
                layout: out_dir.join("layout"),
                tarball: Some(out_dir.join("image.tar")),
            },
        )?;
        let elapsed = start.elapsed();
        println!(
            "run {run}: {:>7.1} ms  binary {:.2} MiB -> layer {:.2} MiB, image {:.2} MiB, {}",
            elapsed.as_secs_f64() * 1000.0,
            binary_len as f64 / 1048576.0,
            out.layers[1].size as f64 / 1048576.0,
            out.total_size as f64 / 1048576.0,
            out.manifest_digest,
        );
    }
    Ok(())
}
