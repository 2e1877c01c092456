// attention.wgsl: causal multi-head attention over a layer's KV cache, for
// one query token (decode) or many (prefill), with grouped-query heads, an
// optional sliding window and optional attention sinks. Softmax is computed
// online over chunks of WG keys (flash-attention style: running max m, sum l
// and unnormalised output o per query row), so no score buffer of the
// context's length exists and any context length works; all in f32.
//
// Query row = (token t, head h): position p = start_position + t; it sees the
// keys at positions [lo, p], lo = max(0, p - window + 1) (0 with no window).
//   out[t][h] = sum_j exp(s_j - M) v_j / (sum_j exp(s_j - M) + exp(sink_h - M))
//   s_j = scale * q[t][h] . k_j,  M = max(max_j s_j, sink_h)
// with k_j, v_j taken from KV head h / GROUP, and the sink term only with HAS_SINKS.
// Keys are HEAD_DIM wide, values V_DIM wide (<= V_ROW), V_ROW apart in the
// value cache: a standard cache has V_DIM = V_ROW = HEAD_DIM; multi-head
// latent attention binds the key cache as the value cache too, its values
// being the first V_DIM (latent) dimensions of each key row (V_ROW = HEAD_DIM).
//
// Split-K (decode over long contexts): the key span [span_start, last
// position] is cut into n_splits ranges of split_length keys; each workgroup
// covers one range and, when n_splits > 1, writes its unnormalised partial
// result (o, m, l) for attention_combine.wgsl to merge. The sink joins
// split 0 as a key with logit sink_h and a zero value.
//
// Bindings (group 0):
//   0  params    uniform              Params (below)
//   1  q         storage, read        array<f32>  query head h of token t starts at
//                                                 q_offset + t q_token_stride + h HEAD_DIM
//   2  k_cache   storage, read        array<f32>  [n_kv_heads][max_context][HEAD_DIM]
//   3  v_cache   storage, read        array<f32>  [n_kv_heads][max_context][V_ROW], values its first V_DIM
//   4  out       storage, read_write  array<f32>  n_splits = 1: [n_tokens][n_heads][V_DIM];
//                                                 n_splits > 1: partials, o as [n_splits][rows][V_DIM]
//                                                 then (m, l) as [n_splits][rows][2], rows = n_tokens n_heads,
//                                                 row = t n_heads + h
//   5  sinks     storage, read        array<f32>  [n_heads]; only with HAS_SINKS
//
// Geometry: a workgroup takes ROWS consecutive query rows of one KV head
// (rows ordered token-major, then the GROUP heads sharing that KV head, so a
// decode step's whole group shares each key and value read) and one split.
// Linear workgroup index (wid.y * num_workgroups.x + wid.x) =
// (split * n_row_blocks + row_block) * n_kv_heads + kv_head; indices past
// the last split return. Per chunk of WG keys: thread j scores key j for
// every row; threads < ROWS update their row's running max and sum; then
// thread t accumulates o in workgroup memory for the outputs t, t + WG, ...
// (output i: row i / V_DIM, dimension i % V_DIM). (Accumulators in
// private arrays would be registers on a GPU, but made lavapipe's compile
// ten times slower; SwiftShader's compile time grows with the size of
// workgroup arrays, hence ROWS is kept small.)
//
// Overrides: WG (threads and keys per chunk, default 64), ROWS (query rows
// per workgroup), HEAD_DIM, V_DIM, V_ROW, GROUP (query heads per KV head).
// Defines:   HAS_SINKS (bool), whether binding 5 exists.

override WG: u32 = 64u;
override ROWS: u32 = 4u;
override HEAD_DIM: u32 = 128u;
override V_DIM: u32 = 128u;
override V_ROW: u32 = 128u;
override GROUP: u32 = 1u;

// Stands for "no score" and the running max before any key: finite, since
// WGSL lets implementations assume there are no infinities.
const NEG: f32 = -3.0e38;

struct Params {
  n_tokens: u32,
  n_heads: u32,
  n_kv_heads: u32,
  max_context: u32,
  start_position: u32,
  window: u32,
  q_token_stride: u32,
  q_offset: u32,
  n_row_blocks: u32,
  n_splits: u32,
  split_length: u32,
  span_start: u32,
  scale: f32,
  head_dim: u32, // = HEAD_DIM; loops run to this runtime copy so compilers do not unroll them whole
  v_dim: u32, // = V_DIM, likewise
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k_cache: array<f32>;
@group(0) @binding(3) var<storage, read> v_cache: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
#if HAS_SINKS
@group(0) @binding(5) var<storage, read> sinks: array<f32>;
#endif

// Scores, then probabilities, of the current chunk: [ROWS][WG].
var<workgroup> chunk_p: array<f32, ROWS * WG>;
// Unnormalised outputs: [ROWS][V_DIM].
var<workgroup> acc: array<f32, ROWS * V_DIM>;
var<workgroup> row_max: array<f32, ROWS>;
var<workgroup> row_sum: array<f32, ROWS>;
var<workgroup> row_rescale: array<f32, ROWS>;

struct Row {
  valid: bool,
  token: u32,
  head: u32,
  lo: u32, // first visible key position
  hi: u32, // last visible key position (the row's own)
}

fn first_visible(position: u32) -> u32 {
  if (params.window == 0u || position + 1u <= params.window) {
    return 0u;
  }
  return position + 1u - params.window;
}

fn row_info(row_block: u32, kv_head: u32, r: u32) -> Row {
  let index = row_block * ROWS + r;
  let token = index / GROUP;
  let head = kv_head * GROUP + index % GROUP;
  let position = params.start_position + token;
  return Row(index < params.n_tokens * GROUP, token, head, first_visible(position), position);
}

fn score(row: Row, kv_head: u32, key: u32) -> f32 {
  let q_base = params.q_offset + row.token * params.q_token_stride + row.head * HEAD_DIM;
  let k_base = (kv_head * params.max_context + key) * HEAD_DIM;
  var dot = 0.0;
  for (var d = 0u; d < params.head_dim; d++) {
    dot += q[q_base + d] * k_cache[k_base + d];
  }
  return params.scale * dot;
}

// Thread `r` folds row r's scores of the chunk's first `chunk_len` keys into
// its running max and sum and turns them into probabilities relative to the
// new max.
fn update_row(row: Row, r: u32, chunk_len: u32) {
  var chunk_max = NEG;
  for (var j = 0u; j < chunk_len; j++) {
    chunk_max = max(chunk_max, chunk_p[r * WG + j]);
  }
  if (!row.valid || chunk_max == NEG) {
    for (var j = 0u; j < chunk_len; j++) {
      chunk_p[r * WG + j] = 0.0;
    }
    row_rescale[r] = 1.0;
    return;
  }
  let new_max = max(row_max[r], chunk_max);
  var chunk_sum = 0.0;
  for (var j = 0u; j < chunk_len; j++) {
    let s = chunk_p[r * WG + j];
    let p = select(0.0, exp(s - new_max), s != NEG);
    chunk_p[r * WG + j] = p;
    chunk_sum += p;
  }
  let rescale = exp(row_max[r] - new_max);
  row_rescale[r] = rescale;
  row_sum[r] = row_sum[r] * rescale + chunk_sum;
  row_max[r] = new_max;
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let linear = wid.y * nwg.x + wid.x;
  let kv_head = linear % params.n_kv_heads;
  let row_block = (linear / params.n_kv_heads) % params.n_row_blocks;
  let split = linear / (params.n_kv_heads * params.n_row_blocks);
  if (split >= params.n_splits) {
    return;
  }

  // Rows of this block (the last block may be short), and the keys it
  // visits: the rows' visible span within this split.
  let block_rows = min(ROWS, params.n_tokens * GROUP - row_block * ROWS);
  let first_row = row_info(row_block, kv_head, 0u);
  let last_row = row_info(row_block, kv_head, block_rows - 1u);
  let split_lo = params.span_start + split * params.split_length;
  let key_lo = max(first_row.lo, split_lo);
  let key_end = min(last_row.hi + 1u, split_lo + params.split_length);

  for (var r = lid; r < block_rows; r += WG) {
    row_max[r] = NEG;
    row_sum[r] = 0.0;
#if HAS_SINKS
    let row = row_info(row_block, kv_head, r);
    if (split == 0u && row.valid) {
      row_max[r] = sinks[row.head];
      row_sum[r] = 1.0;
    }
#endif
  }
  let n_outputs = block_rows * params.v_dim;
  for (var i = lid; i < n_outputs; i += WG) {
    acc[i] = 0.0;
  }
  workgroupBarrier();

  for (var chunk = key_lo; chunk < key_end; chunk += WG) {
    let key = chunk + lid;
    let chunk_len = min(WG, key_end - chunk);
    for (var r = 0u; r < block_rows; r++) {
      let row = row_info(row_block, kv_head, r);
      var s = NEG;
      if (row.valid && key >= row.lo && key <= row.hi && key < key_end) {
        s = score(row, kv_head, key);
      }
      chunk_p[r * WG + lid] = s;
    }
    workgroupBarrier();

    for (var r = lid; r < block_rows; r += WG) {
      update_row(row_info(row_block, kv_head, r), r, chunk_len);
    }
    workgroupBarrier();

    for (var i = lid; i < n_outputs; i += WG) {
      let r = i / V_DIM;
      var o = acc[i] * row_rescale[r];
      let v_base = (kv_head * params.max_context + chunk) * V_ROW + i % V_DIM;
      for (var j = 0u; j < chunk_len; j++) {
        o += chunk_p[r * WG + j] * v_cache[v_base + j * V_ROW];
      }
      acc[i] = o;
    }
    workgroupBarrier();
  }

  let n_rows = params.n_tokens * params.n_heads;
  for (var i = lid; i < n_outputs; i += WG) {
    let r = i / V_DIM;
    let row = row_info(row_block, kv_head, r);
    let global_row = row.token * params.n_heads + row.head;
    if (params.n_splits > 1u) {
      out[(split * n_rows + global_row) * V_DIM + i % V_DIM] = acc[i];
      if (i % V_DIM == 0u) {
        let stats = params.n_splits * n_rows * V_DIM + (split * n_rows + global_row) * 2u;
        out[stats] = row_max[r];
        out[stats + 1u] = row_sum[r];
      }
    } else {
      out[global_row * V_DIM + i % V_DIM] = acc[i] / row_sum[r];
    }
  }
}
