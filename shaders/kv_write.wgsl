// kv_write.wgsl: stores the keys and values of new tokens in a layer's KV
// cache at their positions.
//
//   k_cache[h][start_position + t][d] = k[t][h][d]
//   v_cache[h][start_position + t][d] = v[t][h][d]
//
// Bindings (group 0):
//   0  params   uniform              Params (below)
//   1  k        storage, read        array<f32>  key head h of token t starts at
//                                                k_offset + t src_token_stride + h head_dim
//   2  v        storage, read        array<f32>  likewise from v_offset (k and v may be
//                                                one buffer, e.g. a fused QKV projection)
//   3  k_cache  storage, read_write  array<f32>  [n_kv_heads][max_context][head_dim]
//   4  v_cache  storage, read_write  array<f32>  [n_kv_heads][max_context][head_dim]
// With KEYS_ONLY (a latent cache, whose values are part of its key rows)
// there are two bindings, 1 k and 2 k_cache: only keys are written.
//
// Geometry: one thread per (token, head, dimension), WG threads per
// workgroup; the linear index is (wid.y * num_workgroups.x + wid.x) * WG + lid,
// dimension fastest; threads past the last element return.
//
// Overrides: WG, threads per workgroup (default 64).
// Defines:   KEYS_ONLY (bool).

override WG: u32 = 64u;

struct Params {
  n_tokens: u32,
  n_kv_heads: u32,
  head_dim: u32,
  max_context: u32,
  start_position: u32,
  src_token_stride: u32,
  k_offset: u32,
  v_offset: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> k: array<f32>;
#if KEYS_ONLY
@group(0) @binding(2) var<storage, read_write> k_cache: array<f32>;
#else
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read_write> k_cache: array<f32>;
@group(0) @binding(4) var<storage, read_write> v_cache: array<f32>;
#endif

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let index = (wid.y * nwg.x + wid.x) * WG + lid;
  let per_token = params.n_kv_heads * params.head_dim;
  if (index >= params.n_tokens * per_token) {
    return;
  }
  let token = index / per_token;
  let within = index % per_token; // h * head_dim + d
  let head = within / params.head_dim;
  let d = within % params.head_dim;
  let src = token * params.src_token_stride + within;
  let dst = (head * params.max_context + params.start_position + token) * params.head_dim + d;
  k_cache[dst] = k[params.k_offset + src];
#if !KEYS_ONLY
  v_cache[dst] = v[params.v_offset + src];
#endif
}
