//! Writes synthetic test models (`pocketllm::synth`) into a folder, as `{arch}-{TYPE}.gguf`.
//!
//! usage: synth-models DIR [--seed N] [--arch A,B] [--types T,U] [--shape smollm2-135m]
//!
//! By default every golden variant (`llama`, `qwen2`, `qwen3`, `llama3`) in every storage type;
//! `--arch` and `--types` narrow that down (names as in the file names). Types that cannot be
//! written are reported and skipped. The goldens in `tests/goldens/synth/` are made from these
//! files by `tools/make_goldens.py`.
//!
//! `--shape NAME` writes a benchmark-sized model instead, random weights in a real model's shape,
//! as `NAME-{TYPE}.gguf` (default types Q8_0, Q4_0, F16; a K-quant stores rows that are not whole
//! super-blocks in llama-quantize's fallback type, e.g. Q4_K -> Q5_0): `smollm2-135m`,
//! `gemma3-270m` (262k vocabulary, sliding windows) and `phi3.5-mini` (3.8B, LongRoPE).

use pocketllm::quant::GgmlType;
use pocketllm::synth::{GOLDEN_SEED, SYNTH_TYPES, SynthArch, SynthConfig, synth_model_with};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "usage: synth-models DIR [--seed N] [--arch llama,qwen2,...] [--types F32,Q8_0,...] [--shape smollm2-135m|gemma3-270m|phi3.5-mini]";

struct Job {
    stem: String,
    arch: SynthArch,
    config: SynthConfig,
    ty: GgmlType,
}

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<(), String> {
    let mut dir = None;
    let mut seed = GOLDEN_SEED;
    let (mut archs, mut types, mut shape) = (None, None, None);
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let mut value = |what: &str| it.next().ok_or(format!("{arg} needs {what}; {USAGE}"));
        match arg.as_str() {
            "--seed" => {
                seed =
                    value("an unsigned integer")?.parse().map_err(|_| "--seed needs an unsigned integer".to_string())?
            }
            "--arch" => archs = Some(list(&value("architecture names")?, SynthArch::from_name)?),
            "--types" => {
                types = Some(list(&value("type names")?, |s| GgmlType::ALL.into_iter().find(|t| t.name() == s))?)
            }
            "--shape" => {
                let name = value("a shape name")?;
                let (arch, config) = SynthConfig::shape(&name)
                    .ok_or(format!("unknown shape {name:?} (known: {})", SynthConfig::SHAPES.join(", ")))?;
                shape = Some((name, arch, config));
            }
            "-h" | "--help" => {
                println!("{USAGE}   (default seed {GOLDEN_SEED})");
                return Ok(());
            }
            d if dir.is_none() && !d.starts_with("--") => dir = Some(PathBuf::from(d)),
            other => return Err(format!("unexpected argument {other:?}; {USAGE}")),
        }
    }
    let dir = dir.ok_or(USAGE)?;
    // Types asked for by name must be written; the default list skips what cannot be.
    let strict = types.is_some();
    let jobs: Vec<Job> = match shape {
        Some((name, arch, config)) => {
            if archs.is_some() {
                return Err("--shape fixes the architecture; leave out --arch".into());
            }
            let types = types.unwrap_or(vec![GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::F16]);
            types
                .into_iter()
                .map(|ty| Job { stem: format!("{name}-{}", ty.name()), arch, config: config.clone(), ty })
                .collect()
        }
        None => {
            let types = types.unwrap_or(SYNTH_TYPES.to_vec());
            let archs = archs.unwrap_or(SynthArch::ALL.to_vec());
            archs
                .iter()
                .flat_map(|&arch| {
                    types.iter().map(move |&ty| Job {
                        stem: format!("{}-{}", arch.name(), ty.name()),
                        arch,
                        config: arch.config(),
                        ty,
                    })
                })
                .collect()
        }
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let mut failed = 0;
    for job in jobs {
        if !write(&dir, &job, seed)? {
            failed += 1;
        }
    }
    if strict && failed > 0 {
        return Err(format!("{failed} of the requested models could not be written"));
    }
    Ok(())
}

/// Writes one model; `Ok(false)` if its type cannot store it (said on stderr).
fn write(dir: &Path, job: &Job, seed: u64) -> Result<bool, String> {
    let path = dir.join(format!("{}.gguf", job.stem));
    match synth_model_with(job.arch, &job.config, job.ty, seed) {
        Ok(bytes) => {
            std::fs::write(&path, &bytes).map_err(|e| format!("writing {}: {e}", path.display()))?;
            println!("{} ({} bytes, seed {seed})", path.display(), bytes.len());
            Ok(true)
        }
        Err(e) => {
            eprintln!("skipped {}: {e}", path.display());
            Ok(false)
        }
    }
}

/// A comma-separated list of names, each looked up by `find`.
fn list<T>(names: &str, find: impl Fn(&str) -> Option<T>) -> Result<Vec<T>, String> {
    names.split(',').map(|s| find(s.trim()).ok_or(format!("unknown name {s:?}"))).collect()
}
