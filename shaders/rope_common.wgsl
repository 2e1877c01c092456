// rope_common.wgsl: the rotation angle of ggml's rope and an accurate
// sin/cos, shared by rope.wgsl and rope_kv_write.wgsl. Not a kernel: it is
// #include'd after the includer declares `params` (with theta_scale,
// freq_scale, ext_factor, corr_low and corr_high, as in rope.wgsl) and, with
// HAS_FREQ_FACTORS, `freq_factors`.

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

// Rotation pair (x0, x1) of token position `position` and pair index `pair`:
// (x0 c - x1 s, x0 s + x1 c), c = cos(angle) mscale, s = sin(angle) mscale.
fn rotate_pair(x0: f32, x1: f32, position: u32, pair: u32) -> vec2<f32> {
  let sc = sin_cos(rope_angle(position, pair));
  let sin_theta = sc.x * params.mscale;
  let cos_theta = sc.y * params.mscale;
  return vec2<f32>(x0 * cos_theta - x1 * sin_theta, x0 * sin_theta + x1 * cos_theta);
}
