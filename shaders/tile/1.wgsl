// tile/1.wgsl: one token per workgroup (the decode kernels `matvec_*`, and embed).
// A tile file gives the quant files the token dimension without loops, so the per-token sums
// stay plain values (registers): an `Acc` holds one f32 per token of the tile; xdot, xsum and
// xmul make one from the activations of each token (x4(t, c) and x1(t, c), which the family
// file defines); tok(a, t) is token t's value; tile_bases lists where each token's activations
// start, tokens past the step's last repeating it.
const TT: u32 = 1u;
alias Acc = f32;

// dot(v, activations c..c+4) of each token; c is a multiple of 4.
fn xdot(v: vec4<f32>, c: u32) -> Acc {
    return dot(v, x4(0u, c));
}

// The sum of activations c..c+4 of each token.
fn xsum(c: u32) -> Acc {
    return dot(x4(0u, c), vec4<f32>(1.0));
}

// v * activation c of each token.
fn xmul(v: f32, c: u32) -> Acc {
    return v * x1(0u, c);
}

fn tok(a: Acc, t: u32) -> f32 {
    return a;
}

fn tile_bases(first: u32, last: u32, stride: u32) -> array<u32, TT> {
    return array<u32, TT>(first);
}
