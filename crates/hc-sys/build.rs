//! Compiles the BPF programs (src/bpf/hc.bpf.c) with clang through
//! libbpf-cargo. The object is embedded in the library and loaded at run
//! time; CO-RE relocations fit it to the running kernel's BTF, so nothing
//! about the build machine's kernel is baked in.

use libbpf_cargo::SkeletonBuilder;
use std::path::PathBuf;

const SRC: &str = "src/bpf/hc.bpf.c";

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let obj = out.join("hc.bpf.o");
    if let Err(e) = SkeletonBuilder::new()
        .source(SRC)
        .obj(&obj)
        .clang_args(["-Wall", "-Wno-unused-function"])
        .build()
    {
        panic!(
            "cannot compile the BPF programs ({SRC}): {e:#}\n\
             hint: the build needs clang (scripts/setup installs it)"
        );
    }
    println!("cargo:rerun-if-changed={SRC}");
}
