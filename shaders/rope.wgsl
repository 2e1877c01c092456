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

// pi/2 split into parts of at most 7 significant bits (the last part, an f32,
// takes the rest), so that k * part is exact for |k| < 2^17 and the
// reduction below stays accurate for angles up to about 2e5.
const HALF_PI_1: f32 = 1.5625;
const HALF_PI_2: f32 = 0.0081787109375;
const HALF_PI_3: f32 = 0.00011730194091796875;
const HALF_PI_4: f32 = 3.1391647326017846e-7;
const TWO_OVER_PI: f32 = 0.6366197723675814;

// (sin(a), cos(a)) to within about 1e-7. WGSL only promises 2^-11 absolute
// error for sin and cos on [-pi, pi] and nothing outside it (SwiftShader is
// off by 2e-4), too coarse to compare with the CPU, so the angle is reduced to
// [-pi/4, pi/4] here and evaluated with minimax polynomials (Cephes' sinf/cosf
// coefficients).
fn sin_cos(a: f32) -> vec2<f32> {
  let k = round(a * TWO_OVER_PI);
  let r = (((a - k * HALF_PI_1) - k * HALF_PI_2) - k * HALF_PI_3) - k * HALF_PI_4;
  let r2 = r * r;
  let s = r + r * r2 * (-1.6666654611e-1 + r2 * (8.3321608736e-3 + r2 * -1.9515295891e-4));
  let c = 1.0 - 0.5 * r2 + r2 * r2 * (4.166664568298827e-2 + r2 * (-1.388731625493765e-3 + r2 * 2.443315711809948e-5));
  let quadrant = u32(i32(k) & 3);
  switch quadrant {
    case 0u: { return vec2<f32>(s, c); }
    case 1u: { return vec2<f32>(c, -s); }
    case 2u: { return vec2<f32>(-s, -c); }
    default: { return vec2<f32>(-c, s); }
  }
}

fn yarn_ramp(pair: u32) -> f32 {
  let y = (f32(pair) - params.corr_low) / max(0.001, params.corr_high - params.corr_low);
  return 1.0 - min(1.0, max(0.0, y));
}

fn rope_angle(position: u32, pair: u32) -> f32 {
  var theta = f32(position);
  for (var j = 0u; j < pair; j++) {
    theta = theta * params.theta_scale;
  }
#if HAS_FREQ_FACTORS
  let extrapolated = theta / freq_factors[pair];
#else
  let extrapolated = theta;
#endif
  let interpolated = params.freq_scale * extrapolated;
  if (params.ext_factor == 0.0) {
    return interpolated;
  }
  let mix = yarn_ramp(pair) * params.ext_factor;
  return interpolated * (1.0 - mix) + extrapolated * mix;
}

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

  let sc = sin_cos(rope_angle(positions[token], pair));
  let sin_theta = sc.x * params.mscale;
  let cos_theta = sc.y * params.mscale;

  let base = params.x_offset + token * params.token_stride + head * params.head_dim;
  let i0 = select(base + 2u * pair, base + pair, NEOX);
  let i1 = select(i0 + 1u, i0 + half_rot, NEOX);
  let x0 = x[i0];
  let x1 = x[i1];
  x[i0] = x0 * cos_theta - x1 * sin_theta;
  x[i1] = x0 * sin_theta + x1 * cos_theta;
}
