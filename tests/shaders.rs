//! Every WGSL kernel variant parses and validates with naga (the validator wgpu runs natively),
//! and fits WebGPU's default limits: at most 256 invocations per workgroup, 8 storage buffers
//! per stage, 16 KiB of workgroup memory. Needs no GPU.
#![cfg(not(target_arch = "wasm32"))]

use pocketllm::backend::gpu::{all_kernel_keys, matvec_types, op_families, shader_source};
use wgpu::naga;

/// What naga must be allowed for the base variants: `unpack2x16float` needs
/// SHADER_FLOAT16_IN_FLOAT32, which every WebGPU implementation has (core WGSL; wgpu grants it on
/// any adapter with `DownlevelFlags::SHADER_F16_IN_F32`, i.e. everything but old GL). Nothing else:
/// no `shader-f16`, no subgroups.
const BASE_CAPABILITIES: naga::valid::Capabilities = naga::valid::Capabilities::SHADER_FLOAT16_IN_FLOAT32;

/// WebGPU's default limits (the spec's "default" column), which phones and SwiftShader give.
const DEFAULT_MAX_INVOCATIONS: u32 = 256;
const DEFAULT_MAX_STORAGE_BUFFERS: usize = 8;
const DEFAULT_MAX_WORKGROUP_STORAGE: u32 = 16 * 1024;

#[test]
fn every_kernel_variant_validates_within_default_limits() {
    let keys = all_kernel_keys();
    // Per weight type: matvec (decode) and matmul (prefill) kernels for three variants and five
    // epilogues (store, accumulate, swiglu, geglu, split3), and one embed kernel; then every op
    // family's variants (rms_norm out of place, in place and added, add, add_bias, swiglu, geglu,
    // softcap, rope, argmax, top_k), kv_store, attention and qk_rope_store once per KV cache type.
    assert_eq!(keys.len(), (3 * 2 * 5 + 1) * matvec_types().len() + op_families().len());
    assert_eq!(op_families().len(), 17);
    for key in keys {
        let label = key.label();
        let src = shader_source(key).unwrap();
        assert!(src.contains(&format!("// {label}:")), "{label}: source names its variant");
        let module =
            naga::front::wgsl::parse_str(&src).unwrap_or_else(|e| panic!("{label}: {}", e.emit_to_string(&src)));
        // The Subgroup variant may use subgroup arithmetic in compute shaders, the kernels of an
        // f16 KV cache f16 values (`shader-f16`), nothing more.
        let f16 = match key.family.needs_f16() {
            true => naga::valid::Capabilities::SHADER_FLOAT16,
            false => naga::valid::Capabilities::empty(),
        };
        let mut validator = match key.variant.needs_subgroups() {
            true => {
                let mut v = naga::valid::Validator::new(
                    naga::valid::ValidationFlags::all(),
                    BASE_CAPABILITIES | naga::valid::Capabilities::SUBGROUP | f16,
                );
                v.subgroup_stages(naga::valid::ShaderStages::COMPUTE).subgroup_operations(
                    naga::valid::SubgroupOperationSet::ARITHMETIC | naga::valid::SubgroupOperationSet::BASIC,
                );
                v
            }
            false => naga::valid::Validator::new(naga::valid::ValidationFlags::all(), BASE_CAPABILITIES | f16),
        };
        validator.validate(&module).unwrap_or_else(|e| panic!("{label}: {}", e.emit_to_string(&src)));

        assert_eq!(module.entry_points.len(), 1, "{label}");
        let ep = &module.entry_points[0];
        assert_eq!(ep.name, "main", "{label}");
        let invocations: u32 = ep.workgroup_size.iter().product();
        assert!(invocations <= DEFAULT_MAX_INVOCATIONS, "{label}: {invocations} invocations");

        let mut storage = 0;
        let mut workgroup_bytes = 0;
        for (_, var) in module.global_variables.iter() {
            match var.space {
                naga::AddressSpace::Storage { .. } => storage += 1,
                naga::AddressSpace::WorkGroup => workgroup_bytes += module.types[var.ty].inner.size(module.to_ctx()),
                _ => {}
            }
        }
        assert!(storage <= DEFAULT_MAX_STORAGE_BUFFERS, "{label}: {storage} storage buffers");
        assert!(workgroup_bytes <= DEFAULT_MAX_WORKGROUP_STORAGE, "{label}: {workgroup_bytes} B workgroup memory");
        eprintln!("{label}: ok ({invocations} invocations, {storage} storage buffers, {workgroup_bytes} B workgroup)");
    }
}

#[test]
fn activation_only_types_have_no_kernel() {
    use pocketllm::backend::gpu::{KernelKey, Variant};
    use pocketllm::quant::GgmlType;
    for ty in [GgmlType::Q8_1, GgmlType::Q8_K] {
        for v in Variant::ALL {
            assert!(shader_source(KernelKey::matvec(ty, v)).is_err(), "{ty}");
        }
    }
}

/// The f16 KV cache kernels really use f16 (naga refuses them without `shader-f16`), and
/// nothing else does: the f32 path is what devices without the feature (SwiftShader, many
/// phones) run.
#[test]
fn only_the_f16_kv_kernels_need_shader_f16() {
    let mut f16_kernels = 0;
    for key in all_kernel_keys() {
        let src = shader_source(key).unwrap();
        let module = naga::front::wgsl::parse_str(&src).unwrap();
        let caps = match key.variant.needs_subgroups() {
            true => BASE_CAPABILITIES | naga::valid::Capabilities::SUBGROUP,
            false => BASE_CAPABILITIES,
        };
        let mut validator = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps);
        if key.variant.needs_subgroups() {
            validator.subgroup_stages(naga::valid::ShaderStages::COMPUTE).subgroup_operations(
                naga::valid::SubgroupOperationSet::ARITHMETIC | naga::valid::SubgroupOperationSet::BASIC,
            );
        }
        let without_f16 = validator.validate(&module);
        assert_eq!(without_f16.is_err(), key.family.needs_f16(), "{}", key.label());
        f16_kernels += key.family.needs_f16() as usize;
    }
    assert_eq!(f16_kernels, 3, "kv_store, attention and qk_rope_store over an f16 cache");
}
