// rope.wgsl: rotary position embedding, in place, with ggml's semantics
// (normal and NeoX orderings, partial rotation, linear scaling, YaRN,
// per-pair frequency factors).
//
// For token t, head h and rotation pair i in [0, n_rot/2):
//   theta   = pos[t] * theta_scale^i, multiplied out one factor at a time in
//             f32 (as ggml's CPU rope does, so angles match it bit for bit)
//   extrap  = theta / freq_factors[i]             (HAS_FREQ_FACTORS)
//   interp  = freq_scale * extrap
//   angle   = interp, or with YaRN (ext_factor != 0)
//             interp * (1 - mix) + extrap * mix,  mix = ramp(i) * ext_factor,
//             ramp(i) = 1 - clamp((i - corr_low) / max(0.001, corr_high - corr_low), 0, 1)
//   (x0, x1) <- (x0 c - x1 s, x0 s + x1 c),  c = cos(angle) mscale, s = sin(angle) mscale
// The pair is (2i, 2i+1) in the normal ordering and (i, i + n_rot/2) with
// NEOX; dimensions n_rot..head_dim are not touched.
//
// Bindings (group 0):
//   0  params        uniform              Params (below); theta_scale, mscale and the
//                                         YaRN range are computed on the CPU
//   1  x             storage, read_write  array<f32>  head h of token t starts at
//                                         x_offset + t token_stride + h head_dim
//   2  positions     storage, read        array<u32>  [n_tokens]
//   3  freq_factors  storage, read        array<f32>  [n_rot/2]; only with HAS_FREQ_FACTORS
//
// Geometry: one thread per (token, head, pair), WG threads per workgroup; the
// linear index is (wid.y * num_workgroups.x + wid.x) * WG + lid, pair fastest,
// then head, then token; threads past the last pair return.
//
// Overrides: WG (default 64); NEOX (bool, default false).
// Defines:   HAS_FREQ_FACTORS (bool), whether binding 3 exists.

override WG: u32 = 64u;
override NEOX: bool = false;

struct Params {
  n_tokens: u32,
  n_heads: u32,
  head_dim: u32,
  n_rot: u32,
  token_stride: u32,
  x_offset: u32,
  theta_scale: f32,
  freq_scale: f32,
  ext_factor: f32,
  mscale: f32,
  corr_low: f32,
  corr_high: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<u32>;
#if HAS_FREQ_FACTORS
@group(0) @binding(3) var<storage, read> freq_factors: array<f32>;
#endif

#include "rope_common.wgsl"

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let half_rot = params.n_rot / 2u;
  let index = (wid.y * nwg.x + wid.x) * WG + lid;
  if (index >= params.n_tokens * params.n_heads * half_rot) {
    return;
  }
  let pair = index % half_rot;
  let head = (index / half_rot) % params.n_heads;
  let token = index / (half_rot * params.n_heads);

  let base = params.x_offset + token * params.token_stride + head * params.head_dim;
  let i0 = select(base + 2u * pair, base + pair, NEOX);
  let i1 = select(i0 + 1u, i0 + half_rot, NEOX);
  let rotated = rotate_pair(x[i0], x[i1], positions[token], pair);
  x[i0] = rotated.x;
  x[i1] = rotated.y;
}
