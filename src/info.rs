//! `regulab info`: versions and compute devices.

use serde::Serialize;

/// The torch version regulab was built against (read from the wheel at build time).
pub const TORCH_VERSION: &str = env!("REGULAB_TORCH_VERSION");

#[derive(Debug, Serialize)]
pub struct CudaDevice {
    pub index: usize,
    pub name: String,
    pub total_memory_bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct SystemInfo {
    pub regulab_version: &'static str,
    pub torch_version: &'static str,
    pub libtorch_lib: &'static str,
    pub cuda_available: bool,
    pub cuda_device_count: usize,
    pub devices: Vec<CudaDevice>,
    pub cudnn_available: bool,
    pub cudnn_version: Option<i64>,
    pub cpu_threads: i32,
}

impl SystemInfo {
    pub fn collect() -> Self {
        let cuda_available = tch::Cuda::is_available();
        let count = if cuda_available {
            tch::Cuda::device_count() as usize
        } else {
            0
        };
        let devices = (0..count).map(cuda_device).collect();
        let cudnn_available = cuda_available && tch::Cuda::cudnn_is_available();
        SystemInfo {
            regulab_version: env!("CARGO_PKG_VERSION"),
            torch_version: TORCH_VERSION,
            libtorch_lib: env!("REGULAB_LIBTORCH_LIB"),
            cuda_available,
            cuda_device_count: count,
            devices,
            cudnn_available,
            cudnn_version: cudnn_available.then(tch::utils::version_cudnn),
            cpu_threads: tch::get_num_threads(),
        }
    }

    pub fn to_text(&self) -> String {
        let mut out = format!(
            "regulab {}\ntorch {} (libtorch at {})\nCUDA available: {}\n",
            self.regulab_version,
            self.torch_version,
            self.libtorch_lib,
            if self.cuda_available { "yes" } else { "no" }
        );
        for d in &self.devices {
            out += &format!(
                "  cuda:{}  {}  {:.1} GiB\n",
                d.index,
                d.name,
                d.total_memory_bytes as f64 / (1u64 << 30) as f64
            );
        }
        out += &match self.cudnn_version {
            Some(v) => format!("cuDNN: {v}\n"),
            None => "cuDNN: not available\n".to_string(),
        };
        out += &format!("CPU threads: {}\n", self.cpu_threads);
        out
    }
}

/// tch exposes no CUDA device-properties call, so name and memory come from `nvidia-smi`
/// (shipped with every NVIDIA driver); without it the name stays generic.
fn cuda_device(index: usize) -> CudaDevice {
    let query = std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=name,memory.total",
            "--format=csv,noheader,nounits",
            &format!("--id={index}"),
        ])
        .output();
    if let Ok(out) = query {
        if out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout);
            if let Some((name, mib)) = text.trim().rsplit_once(',') {
                return CudaDevice {
                    index,
                    name: name.trim().to_string(),
                    total_memory_bytes: mib.trim().parse::<u64>().unwrap_or(0) * (1 << 20),
                };
            }
        }
    }
    CudaDevice {
        index,
        name: format!("CUDA device {index}"),
        total_memory_bytes: 0,
    }
}
