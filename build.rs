//! Link settings for libtorch that tch's own build script cannot express.
//!
//! * An rpath to the libtorch `lib` folder, so `regulab` runs without `LD_LIBRARY_PATH`.
//! * `libtorch_cuda` linked with `--no-as-needed`: nothing in regulab references a CUDA
//!   symbol directly, so under the default `--as-needed` the linker drops the library and
//!   torch never registers its CUDA backend (`cuda_available` would be false on a GPU machine).
//! * `src/optim_ops.cpp`, the fused Adam and SparseAdam updates and the ATen calls with
//!   Scalar arguments that tch's bindings leave out
//!   (the optimizer needs them to round as torch.optim does; see that file), and
//!   `src/rng_state.cpp`, the CPU generator's state for checkpoints.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    // torch-sys declares `links = "tch"` and publishes the lib folder it linked against.
    let lib_dir = match env::var("DEP_TCH_LIBTORCH_LIB") {
        Ok(dir) => PathBuf::from(dir),
        Err(_) => {
            println!(
                "cargo::error=libtorch not located by torch-sys; run `bash scripts/setup.sh` first"
            );
            return;
        }
    };
    // Canonicalize so the rpath survives the `.libtorch` symlink being replaced by a copy.
    let lib_dir = lib_dir.canonicalize().unwrap_or(lib_dir);
    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" || target_os == "macos" {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib_dir.display());
    }
    if target_os == "linux" {
        for cuda_lib in ["torch_cuda", "c10_cuda"] {
            if lib_dir.join(format!("lib{cuda_lib}.so")).exists() {
                println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-l{cuda_lib},--as-needed");
            }
        }
    }
    println!("cargo:rustc-env=REGULAB_LIBTORCH_LIB={}", lib_dir.display());
    compile_optim_ops(&lib_dir);
    // The wheel records its version in torch/version.py (`__version__ = '2.11.0+cu130'`).
    let version_file = lib_dir.join("..").join("version.py");
    println!("cargo:rerun-if-changed={}", version_file.display());
    let torch_version = std::fs::read_to_string(&version_file)
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("__version__ = "))
                .map(|v| v.trim().trim_matches('\'').to_string())
        })
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=REGULAB_TORCH_VERSION={torch_version}");
}

/// Compiles src/optim_ops.cpp and src/rng_state.cpp against the headers of the libtorch
/// that tch linked, with the same C++ settings as torch-sys uses for its own wrapper.
fn compile_optim_ops(lib_dir: &std::path::Path) {
    println!("cargo:rerun-if-changed=src/optim_ops.cpp");
    println!("cargo:rerun-if-changed=src/rng_state.cpp");
    println!("cargo:rerun-if-changed=src/ffi_guard.h");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let abi = env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_string());
    let include = lib_dir.join("..").join("include");
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .pic(true)
        .std("c++17")
        .warnings(false)
        // The fused SparseAdam must round each operation as ATen's kernels do (no fma).
        .flag_if_supported("-ffp-contract=off")
        .include(&include)
        .file("src/optim_ops.cpp")
        .file("src/rng_state.cpp");
    if !build.get_compiler().is_like_msvc() {
        build.flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"));
    }
    build.compile("regulab_optim_ops");
}
