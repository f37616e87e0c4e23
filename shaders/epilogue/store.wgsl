// epilogue/store.wgsl, matvec.wgsl's plain output: out[out_offset + t * out_stride + r] = y.
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

const PAIRED: bool = false;

fn emit(t: u32, r: u32, y: f32, unused: f32) {
    out[p.out_offset + t * p.out_stride + r] = y;
}
