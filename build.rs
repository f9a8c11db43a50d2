fn main() {
    println!("cargo:rerun-if-changed=templates");
    println!("cargo:rerun-if-changed=values.yaml");
    println!("cargo:rerun-if-changed=values.schema.json");
    println!("cargo:rerun-if-changed=versions.yaml");
}
