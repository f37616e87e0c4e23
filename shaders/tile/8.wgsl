// tile/8.wgsl: 8 tokens per workgroup, an `Acc` is a mat2x4<f32>, tokens 0-3 in column 0 and
// 4-7 in column 1 (WGSL has no vec8; matrices add and scale component-wise). See tile/1.wgsl.
const TT: u32 = 8u;
alias Acc = mat2x4<f32>;

fn xdot(v: vec4<f32>, c: u32) -> Acc {
    return Acc(
        dot(v, x4(0u, c)), dot(v, x4(1u, c)), dot(v, x4(2u, c)), dot(v, x4(3u, c)),
        dot(v, x4(4u, c)), dot(v, x4(5u, c)), dot(v, x4(6u, c)), dot(v, x4(7u, c)),
    );
}

fn xsum(c: u32) -> Acc {
    return xdot(vec4<f32>(1.0), c);
}

fn xmul(v: f32, c: u32) -> Acc {
    return v * Acc(x1(0u, c), x1(1u, c), x1(2u, c), x1(3u, c), x1(4u, c), x1(5u, c), x1(6u, c), x1(7u, c));
}

fn tok(a: Acc, t: u32) -> f32 {
    return a[t / 4u][t % 4u];
}

fn tile_bases(first: u32, last: u32, stride: u32) -> array<u32, TT> {
    return array<u32, TT>(
        first, min(first + stride, last), min(first + 2u * stride, last), min(first + 3u * stride, last),
        min(first + 4u * stride, last), min(first + 5u * stride, last), min(first + 6u * stride, last),
        min(first + 7u * stride, last),
    );
}
