//! Embeds SKAT's WSDLs and their schemas (`wsdl/<Service>/…`) as a table of files, so that
//! the endpoint serves them without reading the source tree. Files of the same content are
//! embedded once.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("wsdl");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &mut files);
    files.sort();
    let mut contents: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut blobs = String::new();
    let mut table = String::from("pub static FILES: &[(&str, &[u8])] = &[\n");
    for path in &files {
        let bytes = std::fs::read(path).expect("reading a WSDL or schema");
        let next = contents.len();
        let index = *contents.entry(bytes).or_insert_with(|| {
            writeln!(
                blobs,
                "static F{next}: &[u8] = include_bytes!({:?});",
                path.display()
            )
            .unwrap();
            next
        });
        let relative = path.strip_prefix(&root).unwrap().to_str().unwrap();
        writeln!(table, "    ({relative:?}, F{index}),").unwrap();
    }
    table.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("wsdl_files.rs");
    std::fs::write(out, blobs + &table).unwrap();
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("reading wsdl/") {
        let path = entry.unwrap().path();
        if path.is_dir() {
            println!("cargo:rerun-if-changed={}", path.display());
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}
