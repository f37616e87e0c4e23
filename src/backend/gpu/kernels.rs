//! Kernel identities and WGSL assembly. A [`KernelKey`] names one compiled variant; its
//! [`KernelKey::label`] (`matvec_q4_k`) is the label of every GPU object built for it, so
//! validation errors and traces say which kernel it was.

use super::GpuError;
use crate::backend::KvType;
use crate::quant::GgmlType;

const COMMON: &str = include_str!("../../../shaders/common.wgsl");
const WEIGHTS: &str = include_str!("../../../shaders/quant/weights.wgsl");
const MATVEC: &str = include_str!("../../../shaders/matvec.wgsl");
const EMBED: &str = include_str!("../../../shaders/embed.wgsl");
const RMS_NORM: &str = include_str!("../../../shaders/rms_norm.wgsl");
const ELEMENTWISE: &str = include_str!("../../../shaders/elementwise.wgsl");
const ROPE: &str = include_str!("../../../shaders/rope.wgsl");
const KV_STORE: &str = include_str!("../../../shaders/kv_store.wgsl");
const ATTENTION: &str = include_str!("../../../shaders/attention.wgsl");
const ARGMAX: &str = include_str!("../../../shaders/argmax.wgsl");
const TOP_K: &str = include_str!("../../../shaders/top_k.wgsl");
const QK_ROPE_STORE: &str = include_str!("../../../shaders/qk_rope_store.wgsl");
const ROPE_ANGLE: &str = include_str!("../../../shaders/rope_angle.wgsl");
const TILE_1: &str = include_str!("../../../shaders/tile/1.wgsl");
const TILE_8: &str = include_str!("../../../shaders/tile/8.wgsl");
const STORE: &str = include_str!("../../../shaders/epilogue/store.wgsl");
const ACCUMULATE: &str = include_str!("../../../shaders/epilogue/accumulate.wgsl");
const SWIGLU: &str = include_str!("../../../shaders/epilogue/swiglu.wgsl");
const GEGLU: &str = include_str!("../../../shaders/epilogue/geglu.wgsl");
const SPLIT3: &str = include_str!("../../../shaders/epilogue/split3.wgsl");
const REDUCE_WORKGROUP: &str = include_str!("../../../shaders/reduce/workgroup.wgsl");
const REDUCE_SUBGROUP: &str = include_str!("../../../shaders/reduce/subgroup.wgsl");

/// A kernel family: one shader file in `shaders/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KernelFamily {
    /// Matrix product over quantized weights, one token per workgroup: the decode kernel
    /// (`shaders/matvec.wgsl` with TT = 1).
    Matvec(Epilogue),
    /// The same product for a tile of [`Variant::tile_tokens`] tokens per workgroup, each weight
    /// block read once per tile: the prefill kernel (`shaders/matvec.wgsl`).
    Matmul(Epilogue),
    /// Embedding rows for token ids, any weight type (`shaders/embed.wgsl`).
    Embed,
    /// RMS norm per row or per head (`shaders/rms_norm.wgsl`), stored, in place or added.
    RmsNorm(NormOut),
    /// add, add_bias, swiglu (`shaders/elementwise.wgsl`).
    Elementwise(ElementwiseOp),
    /// Rotary embedding, both conventions (`shaders/rope.wgsl`).
    Rope,
    /// Keys and values of a step into a cache of f32 or f16 values (`shaders/kv_store.wgsl`).
    KvStore(KvType),
    /// Causal attention over a KV cache of f32 or f16 values (`shaders/attention.wgsl`).
    Attention(KvType),
    /// Index of the largest logit (`shaders/argmax.wgsl`).
    Argmax,
    /// The k most likely logits with their indices, for sampling (`shaders/top_k.wgsl`).
    TopK,
    /// q/k head norm + rope + KV store fused (`shaders/qk_rope_store.wgsl`), cache as above.
    QkRopeStore(KvType),
}

impl KernelFamily {
    /// The KV cache value type of the families that touch the cache.
    pub fn kv_type(self) -> Option<KvType> {
        match self {
            KernelFamily::KvStore(kv) | KernelFamily::Attention(kv) | KernelFamily::QkRopeStore(kv) => Some(kv),
            _ => None,
        }
    }

    /// Whether its WGSL needs naga's f16 capability (`enable f16`).
    pub fn needs_f16(self) -> bool {
        self.kv_type() == Some(KvType::F16)
    }
}

/// Where `shaders/rms_norm.wgsl` reads its input and how it writes its output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NormOut {
    /// out = norm(x).
    Store,
    /// x = norm(x) (per-head q/k norms).
    InPlace,
    /// out += norm(x) (Gemma's post-norms before the residual add).
    Accumulate,
}

/// What the matvec/matmul kernels do with each finished dot product: the epilogue file
/// (`shaders/epilogue/<name>.wgsl`) compiled into the variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Epilogue {
    /// out = W x.
    Store,
    /// out += W x (the residual add fused into the output projection).
    Accumulate,
    /// out = silu(W_gate x) * (W_up x), gate and up rows in one weight.
    SwiGlu,
    /// out = gelu(W_gate x) * (W_up x) (Gemma).
    GeGlu,
    /// q, k, v rows of one weight to three buffers, with an optional bias.
    Split3,
}

impl Epilogue {
    pub const ALL: [Epilogue; 5] =
        [Epilogue::Store, Epilogue::Accumulate, Epilogue::SwiGlu, Epilogue::GeGlu, Epilogue::Split3];

    /// The epilogue's file name and label suffix.
    pub fn name(self) -> &'static str {
        match self {
            Epilogue::Store => "store",
            Epilogue::Accumulate => "accumulate",
            Epilogue::SwiGlu => "swiglu",
            Epilogue::GeGlu => "geglu",
            Epilogue::Split3 => "split3",
        }
    }

    fn source(self) -> &'static str {
        match self {
            Epilogue::Store => STORE,
            Epilogue::Accumulate => ACCUMULATE,
            Epilogue::SwiGlu => SWIGLU,
            Epilogue::GeGlu => GEGLU,
            Epilogue::Split3 => SPLIT3,
        }
    }
}

/// The operations of `shaders/elementwise.wgsl` (its `OP` constant).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ElementwiseOp {
    /// x += y (residual).
    Add = 0,
    /// x[t] += b (bias broadcast over rows).
    AddBias = 1,
    /// x = silu(x) * y.
    Swiglu = 2,
    /// x = gelu(x) * y (Gemma, gate and up separate).
    Geglu = 3,
    /// x = cap · tanh(x / cap) (Gemma's final logits).
    Softcap = 4,
}

/// How the matrix kernels are compiled. `Base` and `RowPerInvocation` need no optional feature
/// (f32 arithmetic, f16 via `unpack2x16float`); `Subgroup` needs the `subgroups` feature and is
/// chosen when the adapter has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// For GPUs: a workgroup of 64 invocations per row reading consecutive blocks, reduced in
    /// workgroup memory.
    Base,
    /// For CPU adapters (lavapipe, SwiftShader): one invocation per row, 64 rows per
    /// workgroup, no barriers (2-4x faster than `Base` on lavapipe).
    RowPerInvocation,
    /// `Base` whose per-row reduction adds in registers across each subgroup (`subgroupAdd`)
    /// and needs one barrier instead of six (`shaders/reduce/subgroup.wgsl`).
    Subgroup,
}

impl Variant {
    pub const ALL: [Variant; 3] = [Variant::Base, Variant::RowPerInvocation, Variant::Subgroup];

    /// Invocations that share one row in the matvec kernel (its `TPR`).
    pub fn threads_per_row(self) -> usize {
        match self {
            Variant::Base | Variant::Subgroup => 64,
            Variant::RowPerInvocation => 1,
        }
    }

    /// Tokens per workgroup of the prefill (`matmul_*`) kernels, the `TT` of `matvec.wgsl`
    /// (`shaders/tile/<TT>.wgsl`). Each weight word is fetched and unpacked once per tile, so a
    /// GPU, where prefill is bound by weight bandwidth, reads the weights 8x less often than one
    /// matvec per token. The cost is registers: an invocation keeps one sum per token (a
    /// `mat2x4<f32>`), two for the types that also sum x (Q4_1, Q5_1, K-quants), and Base's
    /// reduction holds 64 x 8 (x2 for SwiGLU) floats, 4 KiB of the 16 KiB default. 8 rather
    /// than 4: on lavapipe (RowPerInvocation, compute-bound) a token of a 32-token prefill
    /// costs 1.5-3.4x less than a decode step with 8 and about the same or a little less than
    /// with 4 (a vec4<f32> `Acc`; `examples/gpu_matvec_bench.rs`, noisy two-core machine).
    /// 16 would need 16 sums per invocation (32 with the sums of x), past what keeps GPU
    /// occupancy up.
    pub fn tile_tokens(self) -> usize {
        match self {
            Variant::Base | Variant::Subgroup => 8,
            Variant::RowPerInvocation => 8,
        }
    }

    /// Whether a device with `features` on this adapter can run the variant.
    pub fn runs_on(self, info: &wgpu::AdapterInfo, features: wgpu::Features) -> bool {
        match self {
            Variant::Base | Variant::RowPerInvocation => true,
            // One partial per subgroup in a 64-invocation workgroup (see reduce/subgroup.wgsl).
            Variant::Subgroup => features.contains(wgpu::Features::SUBGROUP) && info.subgroup_max_size <= 64,
        }
    }

    /// The default for an adapter: `RowPerInvocation` on CPU adapters; on GPUs `Subgroup` when
    /// the device has subgroups, else `Base`.
    pub fn for_adapter(info: &wgpu::AdapterInfo, features: wgpu::Features) -> Self {
        if info.device_type == wgpu::DeviceType::Cpu {
            Variant::RowPerInvocation
        } else if Variant::Subgroup.runs_on(info, features) {
            Variant::Subgroup
        } else {
            Variant::Base
        }
    }

    /// The naga capabilities its kernels need beyond the baseline.
    pub fn needs_subgroups(self) -> bool {
        self == Variant::Subgroup
    }
}

/// One compiled kernel: family, weight type (for families that read weights) and variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KernelKey {
    pub family: KernelFamily,
    pub ty: Option<GgmlType>,
    pub variant: Variant,
}

impl KernelKey {
    /// The decode kernel that stores `W x`.
    pub fn matvec(ty: GgmlType, variant: Variant) -> Self {
        KernelKey::product(ty, variant, Epilogue::Store, false)
    }

    /// A matrix-product kernel: one token per workgroup (`tiled` false, `matvec_*`) or a tile of
    /// [`Variant::tile_tokens`] (`matmul_*`), with its epilogue.
    pub fn product(ty: GgmlType, variant: Variant, epilogue: Epilogue, tiled: bool) -> Self {
        let family = if tiled { KernelFamily::Matmul(epilogue) } else { KernelFamily::Matvec(epilogue) };
        KernelKey { family, ty: Some(ty), variant }
    }

    /// Tokens per workgroup (`TT`): 1 but for the `matmul_*` kernels.
    pub fn tile_tokens(&self) -> usize {
        match self.family {
            KernelFamily::Matmul(_) => self.variant.tile_tokens(),
            _ => 1,
        }
    }

    /// A kernel of a family that reads no weights (one `Base` variant each).
    pub fn op(family: KernelFamily) -> Self {
        KernelKey { family, ty: None, variant: Variant::Base }
    }

    pub fn embed(ty: GgmlType) -> Self {
        KernelKey { family: KernelFamily::Embed, ty: Some(ty), variant: Variant::Base }
    }

    /// `matvec_q4_k`, `matvec_f32`, `matmul_q4_0_swiglu_rpi`, ...: family, weight type, the
    /// epilogue unless it is `store`, then a suffix for variants other than `Base` (`_rpi`).
    pub fn label(&self) -> String {
        let family = match self.family {
            KernelFamily::Matvec(_) => "matvec",
            KernelFamily::Matmul(_) => "matmul",
            KernelFamily::Embed => "embed",
            KernelFamily::RmsNorm(NormOut::Store) => "rms_norm",
            KernelFamily::RmsNorm(NormOut::InPlace) => "rms_norm_inplace",
            KernelFamily::RmsNorm(NormOut::Accumulate) => "rms_norm_add",
            KernelFamily::Elementwise(ElementwiseOp::Add) => "add",
            KernelFamily::Elementwise(ElementwiseOp::AddBias) => "add_bias",
            KernelFamily::Elementwise(ElementwiseOp::Swiglu) => "swiglu",
            KernelFamily::Elementwise(ElementwiseOp::Geglu) => "geglu",
            KernelFamily::Elementwise(ElementwiseOp::Softcap) => "softcap",
            KernelFamily::Rope => "rope",
            KernelFamily::KvStore(_) => "kv_store",
            KernelFamily::Attention(_) => "attention",
            KernelFamily::Argmax => "argmax",
            KernelFamily::TopK => "top_k",
            KernelFamily::QkRopeStore(_) => "qk_rope_store",
        };
        let mut s = String::from(family);
        if let Some(ty) = self.ty {
            s.push('_');
            s.push_str(&ty.name().to_ascii_lowercase());
        }
        if let KernelFamily::Matvec(e) | KernelFamily::Matmul(e) = self.family
            && e != Epilogue::Store
        {
            s.push('_');
            s.push_str(e.name());
        }
        if let Some(KvType::F16) = self.family.kv_type() {
            s.push_str("_kv_f16");
        }
        match self.variant {
            Variant::Base => {}
            Variant::RowPerInvocation => s.push_str("_rpi"),
            Variant::Subgroup => s.push_str("_sg"),
        }
        s
    }
}

/// The WGSL of one block format (`shaders/quant/<type>.wgsl`), or `None` for types no kernel
/// reads (Q8_1 and Q8_K only ever appear as the CPU's activation types).
fn quant_source(ty: GgmlType) -> Option<&'static str> {
    use GgmlType::*;
    Some(match ty {
        F32 => include_str!("../../../shaders/quant/f32.wgsl"),
        F16 => include_str!("../../../shaders/quant/f16.wgsl"),
        BF16 => include_str!("../../../shaders/quant/bf16.wgsl"),
        Q4_0 => include_str!("../../../shaders/quant/q4_0.wgsl"),
        Q4_1 => include_str!("../../../shaders/quant/q4_1.wgsl"),
        Q5_0 => include_str!("../../../shaders/quant/q5_0.wgsl"),
        Q5_1 => include_str!("../../../shaders/quant/q5_1.wgsl"),
        Q8_0 => include_str!("../../../shaders/quant/q8_0.wgsl"),
        Q2_K => include_str!("../../../shaders/quant/q2_k.wgsl"),
        Q3_K => include_str!("../../../shaders/quant/q3_k.wgsl"),
        Q4_K => include_str!("../../../shaders/quant/q4_k.wgsl"),
        Q5_K => include_str!("../../../shaders/quant/q5_k.wgsl"),
        Q6_K => include_str!("../../../shaders/quant/q6_k.wgsl"),
        Q8_1 | Q8_K => return None,
    })
}

/// The tile file of `tt` tokens per workgroup (`shaders/tile/<tt>.wgsl`).
fn tile_source(tt: usize) -> Result<&'static str, GpuError> {
    match tt {
        1 => Ok(TILE_1),
        8 => Ok(TILE_8),
        _ => Err(GpuError::Invalid(format!("no tile file for {tt} tokens per workgroup"))),
    }
}

/// Values per work item in the matvec kernel of `ty` (the `ITEM` constant of its quant file):
/// the length of the innermost sequential f32 sum, which the GPU tests' error bound uses.
pub fn matvec_item_values(ty: GgmlType) -> usize {
    match ty {
        GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => 4,
        _ => 32,
    }
}

/// The full WGSL of a kernel: `common.wgsl`, then for weight-reading families
/// `quant/weights.wgsl` and `quant/<type>.wgsl`, then the family file.
pub fn shader_source(key: KernelKey) -> Result<String, GpuError> {
    let label = key.label();
    let weight_source = |family: &str| -> Result<(String, &'static str), GpuError> {
        let ty = key.ty.ok_or_else(|| GpuError::Invalid(format!("{label}: needs a weight type")))?;
        let quant = quant_source(ty).ok_or_else(|| GpuError::Invalid(format!("no GPU {family} kernel for {ty}")))?;
        Ok((ty.name().to_ascii_lowercase(), quant))
    };
    let plain = |file: &str, prelude: &str, body: &str| {
        format!("// {label}: generated from common.wgsl + {file}\n{COMMON}\n{prelude}{body}")
    };
    // The cache's value type `KV` for the families that touch it: f16 storage needs the
    // extension, whose `enable` must open the module.
    let with_kv = |kv: KvType, file: &str, body: &str| match kv {
        KvType::F32 => plain(file, "// KV cache of f32 values\nalias KV = f32;\n", body),
        KvType::F16 => format!("enable f16;\n{}", plain(file, "// KV cache of f16 values\nalias KV = f16;\n", body)),
    };
    Ok(match key.family {
        KernelFamily::Matvec(e) | KernelFamily::Matmul(e) => {
            let (name, quant) = weight_source("matvec")?;
            let (epilogue, tt) = (e.name(), key.tile_tokens());
            let (reduce_file, reduce, main) = match key.variant {
                Variant::Subgroup => ("subgroup", REDUCE_SUBGROUP, with_subgroup_builtins(MATVEC)?),
                _ => ("workgroup", REDUCE_WORKGROUP, MATVEC.to_string()),
            };
            format!(
                "// {label}: generated from common.wgsl + quant/weights.wgsl + quant/{name}.wgsl + tile/{tt}.wgsl + \
                 epilogue/{epilogue}.wgsl + reduce/{reduce_file}.wgsl + matvec.wgsl\n\
                 {COMMON}\n{WEIGHTS}\n{quant}\n{}\n// variant {:?}\nconst TPR: u32 = {}u;\n{}\n{reduce}\n{main}",
                tile_source(tt)?,
                key.variant,
                key.variant.threads_per_row(),
                e.source()
            )
        }
        KernelFamily::Embed => {
            let (name, quant) = weight_source("embed")?;
            format!(
                "// {label}: generated from common.wgsl + quant/weights.wgsl + quant/{name}.wgsl + tile/1.wgsl + \
                 embed.wgsl\n{COMMON}\n{WEIGHTS}\n{quant}\n{TILE_1}\n{EMBED}"
            )
        }
        KernelFamily::RmsNorm(out) => {
            const READ_X: &str = "@group(0) @binding(4) var<storage, read> x: array<f32>;\n\
                                  fn load_x(i: u32) -> f32 {\n    return x[i];\n}\n";
            const STORE: &str = "fn put(i: u32, v: f32) {\n    y[i] = v;\n}\n";
            let prelude = match out {
                NormOut::InPlace => {
                    format!("// variant: in place\nfn load_x(i: u32) -> f32 {{\n    return y[i];\n}}\n{STORE}")
                }
                NormOut::Store => format!("// variant: out of place\n{READ_X}{STORE}"),
                NormOut::Accumulate => {
                    format!("// variant: accumulate\n{READ_X}fn put(i: u32, v: f32) {{\n    y[i] += v;\n}}\n")
                }
            };
            plain("rms_norm.wgsl", &prelude, RMS_NORM)
        }
        KernelFamily::Elementwise(op) => {
            plain("elementwise.wgsl", &format!("// variant {op:?}\nconst OP: u32 = {}u;\n", op as u32), ELEMENTWISE)
        }
        KernelFamily::Rope => plain("rope_angle.wgsl + rope.wgsl", ROPE_ANGLE, ROPE),
        KernelFamily::KvStore(kv) => with_kv(kv, "kv_store.wgsl", KV_STORE),
        KernelFamily::Attention(kv) => with_kv(kv, "attention.wgsl", ATTENTION),
        KernelFamily::Argmax => plain("argmax.wgsl", "", ARGMAX),
        KernelFamily::TopK => plain("top_k.wgsl", "", TOP_K),
        KernelFamily::QkRopeStore(kv) => {
            with_kv(kv, "rope_angle.wgsl + qk_rope_store.wgsl", &format!("{ROPE_ANGLE}\n{QK_ROPE_STORE}"))
        }
    })
}

/// `matvec.wgsl` with the subgroup builtins its entry point takes in the `Subgroup` variant
/// (builtins can only be entry-point parameters, and other variants must not name them).
fn with_subgroup_builtins(main: &str) -> Result<String, GpuError> {
    const BUILTINS: &str = "    // SUBGROUP BUILTINS\n";
    const SETUP: &str = "    // SUBGROUP SETUP\n";
    if !main.contains(BUILTINS) || !main.contains(SETUP) {
        return Err(GpuError::Invalid("matvec.wgsl lost its SUBGROUP markers".into()));
    }
    Ok(main
        .replace(
            BUILTINS,
            "    @builtin(subgroup_invocation_id) subgroup_lane: u32,\n    @builtin(subgroup_size) subgroup_len: u32,\n",
        )
        .replace(SETUP, "    sg_lane = subgroup_lane;\n    sg_size = subgroup_len;\n"))
}

/// Every kernel variant the crate can build (what `tests/shaders.rs` validates).
pub fn all_kernel_keys() -> Vec<KernelKey> {
    let types = super::matvec_types();
    let mut keys = Vec::new();
    for v in Variant::ALL {
        for tiled in [false, true] {
            for e in Epilogue::ALL {
                keys.extend(types.iter().map(|&t| KernelKey::product(t, v, e, tiled)));
            }
        }
    }
    keys.extend(types.iter().map(|&t| KernelKey::embed(t)));
    keys.extend(op_families().into_iter().map(KernelKey::op));
    keys
}

/// Every family that reads no weights, with each of its variants.
pub fn op_families() -> Vec<KernelFamily> {
    use ElementwiseOp::*;
    use KernelFamily::*;
    let mut families = vec![
        RmsNorm(NormOut::Store),
        RmsNorm(NormOut::InPlace),
        RmsNorm(NormOut::Accumulate),
        Elementwise(Add),
        Elementwise(AddBias),
        Elementwise(Swiglu),
        Elementwise(Geglu),
        Elementwise(Softcap),
        Rope,
        Argmax,
        TopK,
    ];
    for kv in [KvType::F32, KvType::F16] {
        families.extend([KvStore(kv), Attention(kv), QkRopeStore(kv)]);
    }
    families
}
