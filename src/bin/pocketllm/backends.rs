//! `--backend cpu|gpu|auto`: builds the backend a command runs on. `auto` takes a hardware GPU
//! adapter when there is one and otherwise the CPU, saying why on stderr; when the GPU fails
//! (no memory for the model, device lost) it says so and runs the command again on the CPU.

use crate::CliError;
use crate::args::Args;
use pocketllm::Error;
use pocketllm::backend::Backend;
use pocketllm::backend::cpu::CpuBackend;
use pocketllm::backend::gpu::{GpuBackend, GpuOptions};

/// A command that runs on any backend; `describe` names the backend in its report.
pub(crate) trait OnBackend {
    fn run<B: Backend>(&mut self, backend: B, describe: &str) -> Result<(), CliError>;
}

fn cpu(a: &Args) -> Result<(CpuBackend, String), CliError> {
    // One thread by default: rayon wakes its workers for every matmul, and on small models that
    // costs more than the second core gains during decoding (see the README's performance
    // section). `--threads N` opts in; a spinning pool is the SIMD/threads issue's job.
    let threads: usize = a.num("threads", 1)?;
    if threads == 0 {
        return Err("--threads must be at least 1".to_string().into());
    }
    let b = CpuBackend::new(threads)?;
    let describe = format!("cpu ({} thread{})", b.threads(), if b.threads() == 1 { "" } else { "s" });
    Ok((b, describe))
}

fn gpu() -> Result<(GpuBackend, String), Error> {
    let b = GpuBackend::new_blocking(&GpuOptions::default())?;
    let describe = format!("gpu ({})", b.adapter_name());
    Ok((b, describe))
}

/// Whether a failure is the GPU's (so `auto` should retry on the CPU) rather than the input's.
fn is_gpu_failure(e: &Error) -> bool {
    matches!(e, Error::Gpu(_) | Error::OutOfMemory(_))
}

/// Runs `task` on the backend `--backend` names (default `auto`).
pub(crate) fn with_backend(a: &Args, task: &mut impl OnBackend) -> Result<(), CliError> {
    match a.str("backend").unwrap_or("auto") {
        "cpu" => {
            let (b, d) = cpu(a)?;
            task.run(b, &d)
        }
        "gpu" => {
            let (b, d) = gpu()?;
            eprintln!("backend: {d}");
            task.run(b, &d)
        }
        "auto" => {
            let reason = match gpu() {
                Ok((b, d)) if !b.is_software() => {
                    eprintln!("backend: {d} (auto: a GPU adapter is present)");
                    match task.run(b, &d) {
                        Err(CliError::Engine(e)) if is_gpu_failure(&e) => format!("the GPU failed [{}]: {e}", e.code()),
                        done => return done,
                    }
                }
                Ok((b, _)) => {
                    format!("the only adapter, {}, is a software renderer; the CPU backend is faster", b.adapter_name())
                }
                Err(e) => e.to_string(),
            };
            let (b, d) = cpu(a)?;
            eprintln!("backend: {d} (auto: {reason})");
            task.run(b, &d)
        }
        other => Err(format!("--backend must be cpu, gpu or auto, not {other:?}").into()),
    }
}
