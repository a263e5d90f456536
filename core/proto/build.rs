//! Compiles every Cap'n Proto schema in `schema/` into Rust (needs the `capnp` tool).

use std::path::Path;
use std::process::Command;

fn main() {
    let schema_dir = Path::new("schema");
    println!("cargo:rerun-if-changed=schema");
    if Command::new("capnp").arg("--version").output().is_err() {
        panic!(
            "the Cap'n Proto compiler `capnp` was not found on PATH; \
             install it with `apt-get install -y capnproto` (Debian/Ubuntu) \
             or `brew install capnp` (macOS)"
        );
    }
    let mut schemas: Vec<_> = std::fs::read_dir(schema_dir)
        .expect("core/proto/schema exists")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "capnp"))
        .collect();
    schemas.sort();
    let mut command = capnpc::CompilerCommand::new();
    command
        .src_prefix("schema")
        .default_parent_module(vec!["schema".into()]);
    for schema in &schemas {
        println!("cargo:rerun-if-changed={}", schema.display());
        command.file(schema);
    }
    command.run().expect("compiling Cap'n Proto schemas");
}
