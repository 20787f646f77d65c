//! Embeds SKAT's files as tables, so that the crate needs no source tree at run time:
//! - the WSDLs and their schemas (`wsdl/<Service>/…`), as the endpoint serves them; files of
//!   the same content are embedded once;
//! - the schemas of the EMCS functional messages (`schema/v<version>/…`), which the IE
//!   messages are validated against.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let wsdl = embed(&manifest.join("wsdl"), "FILES", "&[u8]", "include_bytes");
    std::fs::write(out.join("wsdl_files.rs"), wsdl).unwrap();
    let schemas = embed(&manifest.join("schema"), "SCHEMAS", "&str", "include_str");
    std::fs::write(out.join("schema_files.rs"), schemas).unwrap();
}

/// Rust source of `pub static <name>: &[(&str, <ty>)]`: every file under `root` by its path
/// relative to `root`, read by the macro `include`.
fn embed(root: &Path, name: &str, ty: &str, include: &str) -> String {
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(root, &mut files);
    files.sort();
    let mut contents: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut blobs = String::new();
    let mut table = format!("pub static {name}: &[(&str, {ty})] = &[\n");
    for path in &files {
        let bytes = std::fs::read(path).expect("reading an embedded file");
        let next = contents.len();
        let index = *contents.entry(bytes).or_insert_with(|| {
            writeln!(
                blobs,
                "static {name}{next}: {ty} = {include}!({:?});",
                path.display()
            )
            .unwrap();
            next
        });
        let relative = path.strip_prefix(root).unwrap().to_str().unwrap();
        writeln!(table, "    ({relative:?}, {name}{index}),").unwrap();
    }
    table.push_str("];\n");
    blobs + &table
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("reading an embedded directory") {
        let path = entry.unwrap().path();
        if path.is_dir() {
            println!("cargo:rerun-if-changed={}", path.display());
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}
