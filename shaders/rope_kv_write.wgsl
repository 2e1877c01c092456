// rope_kv_write.wgsl: RoPE on the queries and keys of new tokens and the
// keys and values into a layer's KV cache, in one dispatch (the decode step
// would otherwise spend three: rope q, rope k, kv_write). Per token t:
//
//   q[t][h]                   rotated in place, as rope.wgsl does    h < n_heads
//   k_cache[h][start + t][d]  = rope(k[t][h])[d]                     h < n_kv_heads
//   v_cache[h][start + t][d]  = v[t][h][d]
//
// k itself is left as it was. Each rotated element is computed by the same
// `rotate_pair` as rope.wgsl, so the cache holds the bits of rope then
// kv_write.
//
// Bindings (group 0):
//   0  params        uniform              Params (below; the rope fields as in rope.wgsl)
//   1  q             storage, read_write  array<f32>  [tokens][n_heads][head_dim]
//   2  k             storage, read        array<f32>  [tokens][n_kv_heads][head_dim]
//   3  v             storage, read        array<f32>  [tokens][n_kv_heads][head_dim]
//   4  positions     storage, read        array<u32>  [tokens]
//   5  k_cache       storage, read_write  array<f32>  [n_kv_heads][max_context][head_dim]
//   6  v_cache       storage, read_write  array<f32>  [n_kv_heads][max_context][head_dim]
//   7  freq_factors  storage, read        array<f32>  [n_rot/2]; only with HAS_FREQ_FACTORS
//
// Geometry: one thread per query rotation pair and per key/value element,
// token-major: a token's n_heads * n_rot/2 query pairs, then its
// n_kv_heads * head_dim cache elements; linear index
// (wid.y * num_workgroups.x + wid.x) * WG + lid; threads past the end return.
//
// Overrides: WG (default 64); NEOX (bool, default false).
// Defines:   HAS_FREQ_FACTORS (bool), whether binding 7 exists.

override WG: u32 = 64u;
override NEOX: bool = false;

struct Params {
  n_tokens: u32,
  n_heads: u32,
  n_kv_heads: u32,
  head_dim: u32,
  n_rot: u32,
  max_context: u32,
  start_position: u32,
  theta_scale: f32,
  freq_scale: f32,
  ext_factor: f32,
  mscale: f32,
  corr_low: f32,
  corr_high: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> positions: array<u32>;
@group(0) @binding(5) var<storage, read_write> k_cache: array<f32>;
@group(0) @binding(6) var<storage, read_write> v_cache: array<f32>;
#if HAS_FREQ_FACTORS
@group(0) @binding(7) var<storage, read> freq_factors: array<f32>;
#endif

#include "rope_common.wgsl"

// The elements (i0, i1) of pair `pair` in a head starting at `base`.
fn pair_elements(base: u32, pair: u32) -> vec2<u32> {
  let half_rot = params.n_rot / 2u;
  let i0 = select(base + 2u * pair, base + pair, NEOX);
  return vec2<u32>(i0, select(i0 + 1u, i0 + half_rot, NEOX));
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let half_rot = params.n_rot / 2u;
  let q_pairs = params.n_heads * half_rot;
  let kv_elements = params.n_kv_heads * params.head_dim;
  let index = (wid.y * nwg.x + wid.x) * WG + lid;
  if (index >= params.n_tokens * (q_pairs + kv_elements)) {
    return;
  }
  let token = index / (q_pairs + kv_elements);
  let within = index % (q_pairs + kv_elements);
  let position = positions[token];

  if (within < q_pairs) {
    let pair = within % half_rot;
    let head = within / half_rot;
    let at = pair_elements((token * params.n_heads + head) * params.head_dim, pair);
    let rotated = rotate_pair(q[at.x], q[at.y], position, pair);
    q[at.x] = rotated.x;
    q[at.y] = rotated.y;
    return;
  }

  let element = within - q_pairs; // h * head_dim + d
  let head = element / params.head_dim;
  let d = element % params.head_dim;
  let src = token * kv_elements + element;
  let dst = (head * params.max_context + params.start_position + token) * params.head_dim + d;
  var key = k[src];
  if (d < params.n_rot) {
    // Which pair d belongs to, and whether it is the pair's first element.
    let pair = select(d / 2u, d % half_rot, NEOX);
    let first = select(d % 2u == 0u, d < half_rot, NEOX);
    let at = pair_elements(token * kv_elements + head * params.head_dim, pair);
    let rotated = rotate_pair(k[at.x], k[at.y], position, pair);
    key = select(rotated.y, rotated.x, first);
  }
  k_cache[dst] = key;
  v_cache[dst] = v[src];
}
