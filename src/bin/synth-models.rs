//! Writes every synthetic test model (`pocketllm::synth`) into a folder, as `{arch}-{TYPE}.gguf`.
//!
//! usage: synth-models DIR [--seed N]
//!
//! Types that `quant::quantize_row` cannot write yet are reported and skipped. The goldens in
//! `tests/goldens/synth/` are made from these files by `tools/make_goldens.py`.

use pocketllm::synth::{try_synth_model, SynthArch, GOLDEN_SEED, SYNTH_TYPES};
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut dir = None;
    let mut seed = GOLDEN_SEED;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--seed" => {
                let Some(s) = args.get(i + 1).and_then(|s| s.parse().ok()) else {
                    eprintln!("--seed needs an unsigned integer");
                    return ExitCode::FAILURE;
                };
                seed = s;
                i += 1;
            }
            "-h" | "--help" => {
                println!("usage: synth-models DIR [--seed N]   (default seed {GOLDEN_SEED})");
                return ExitCode::SUCCESS;
            }
            d if dir.is_none() => dir = Some(PathBuf::from(d)),
            other => {
                eprintln!("unexpected argument {other:?}; usage: synth-models DIR [--seed N]");
                return ExitCode::FAILURE;
            }
        }
        i += 1;
    }
    let Some(dir) = dir else {
        eprintln!("usage: synth-models DIR [--seed N]");
        return ExitCode::FAILURE;
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("creating {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    for arch in SynthArch::ALL {
        for ty in SYNTH_TYPES {
            let path = dir.join(format!("{}-{}.gguf", arch.name(), ty.name()));
            match try_synth_model(arch, ty, seed) {
                Ok(bytes) => {
                    if let Err(e) = std::fs::write(&path, &bytes) {
                        eprintln!("writing {}: {e}", path.display());
                        return ExitCode::FAILURE;
                    }
                    println!("{} ({} bytes, seed {seed})", path.display(), bytes.len());
                }
                Err(e) => eprintln!("skipped {}: {e}", path.display()),
            }
        }
    }
    ExitCode::SUCCESS
}
