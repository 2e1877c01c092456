// router_logits.wgsl: MoE router logits, and optionally the shared-expert gate.
//
//   logits[t, e]      = W[e] . x[t] (+ logit_bias[e])       e in [0, n_experts)
//   shared_gate[t]    = (expert 0, sigmoid(w_shared . x[t]))  with HAS_SHARED_GATE
//
// W is the router matrix [n_experts, hidden] row-major, in the block format of
// the DECODER (f32 or f16 in practice: GGUF's ffn_gate_inp with dims
// [hidden, n_experts]); row e starts at byte e * (hidden / QK) * QBYTES.
// The shared-expert gate row (Qwen's ffn_gate_inp_shexp) is a 1-D tensor,
// which GGUF keeps in f32, so it is read as f32 directly. It is computed as
// row n_experts of the same grid, and written as the shared expert's
// routing pair (expert id 0, weight), the layout the expert FFN reads, so the
// shared expert runs straight from it.
//
// Bindings (group 0):
//   0  params       uniform              Params { tokens, n_experts, hidden }
//   1  x            storage, read        array<f32>  [tokens, hidden]
//   2  weight       storage, read        array<u32>  W's bytes as little-endian words
//   3  logits       storage, read_write  array<f32>  [tokens, n_experts]
//   LOGIT_BIAS_BINDING   logit_bias      storage, read        array<f32> [n_experts]  (HAS_LOGIT_BIAS)
//   SHARED_GATE_BINDING  shared_weight   storage, read        array<f32> [hidden]     (HAS_SHARED_GATE)
//   SHARED_GATE_BINDING + 1  shared_gate storage, read_write  array<f32> [tokens, 2] (HAS_SHARED_GATE): word 0 the id 0 (0.0's bits), word 1 the gate
//
// Geometry: WG threads per workgroup in WG / TPR rows of TPR threads; a row
// of W (or the shared gate row) times one token is one dot product. The grid
// is tokens * ceil(n_rows / (WG / TPR)) workgroups, n_rows = n_experts (+ 1
// with the shared gate); workgroup (wid.y * num_workgroups.x + wid.x) takes
// token linear / row_blocks and row block linear % row_blocks. Thread `lane`
// of a row sums the 8-element groups lane, lane + TPR, ... (each group in
// element order), then a tree over the TPR lanes in workgroup memory.
//
// Overrides: WG (threads per workgroup), TPR (threads per row, a power of two
//            dividing WG).
// Defines:   DECODER (string) the weight format's decoder file;
//            HAS_LOGIT_BIAS, HAS_SHARED_GATE (bool) and the binding numbers
//            LOGIT_BIAS_BINDING, SHARED_GATE_BINDING of what is present.

#include DECODER

override WG: u32 = 64u;
override TPR: u32 = 8u;

struct Params {
  tokens: u32,
  n_experts: u32,
  hidden: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<u32>;
@group(0) @binding(3) var<storage, read_write> logits: array<f32>;
#if HAS_LOGIT_BIAS
@group(0) @binding(LOGIT_BIAS_BINDING) var<storage, read> logit_bias: array<f32>;
#endif
#if HAS_SHARED_GATE
@group(0) @binding(SHARED_GATE_BINDING) var<storage, read> shared_weight: array<f32>;
@group(0) @binding(SHARED_GATE_BINDING + 1) var<storage, read_write> shared_gate: array<f32>;
#endif

var<workgroup> partial: array<f32, WG>;

fn wload(word: u32) -> u32 {
  return weight[word];
}

fn dot8(w: array<f32, 8>, x_first: u32) -> f32 {
  var sum = 0.0;
  for (var i = 0u; i < 8u; i++) {
    sum += w[i] * x[x_first + i];
  }
  return sum;
}

// This thread's share of W[row] . x[token] (row == n_experts: the shared gate row).
fn lane_dot(row: u32, token: u32, lane: u32) -> f32 {
  let groups = params.hidden / 8u;
  let x_base = token * params.hidden;
  var sum = 0.0;
  if (row < params.n_experts) {
    let groups_per_block = QK / 8u;
    let row_byte = row * (params.hidden / QK) * QBYTES;
    for (var g = lane; g < groups; g += TPR) {
      let w = dequant8(row_byte + (g / groups_per_block) * QBYTES, g % groups_per_block);
      sum += dot8(w, x_base + 8u * g);
    }
  } else {
#if HAS_SHARED_GATE
    for (var g = lane; g < groups; g += TPR) {
      var w: array<f32, 8>;
      for (var i = 0u; i < 8u; i++) {
        w[i] = shared_weight[8u * g + i];
      }
      sum += dot8(w, x_base + 8u * g);
    }
#endif
  }
  return sum;
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let rows_per_group = WG / TPR;
#if HAS_SHARED_GATE
  let n_rows = params.n_experts + 1u;
#else
  let n_rows = params.n_experts;
#endif
  let row_blocks = (n_rows + rows_per_group - 1u) / rows_per_group;
  let linear = wid.y * nwg.x + wid.x;
  // Uniform across the workgroup, so the barriers below stay in uniform control flow.
  if (linear >= params.tokens * row_blocks) {
    return;
  }
  let token = linear / row_blocks;
  let row = (linear % row_blocks) * rows_per_group + lid / TPR;
  let lane = lid % TPR;

  var sum = 0.0;
  if (row < n_rows) {
    sum = lane_dot(row, token, lane);
  }
  partial[lid] = sum;
  workgroupBarrier();
  for (var stride = TPR / 2u; stride > 0u; stride /= 2u) {
    if (lane < stride) {
      partial[lid] += partial[lid + stride];
    }
    workgroupBarrier();
  }
  if (lane != 0u || row >= n_rows) {
    return;
  }
  let dot = partial[lid];
  if (row < params.n_experts) {
#if HAS_LOGIT_BIAS
    logits[token * params.n_experts + row] = dot + logit_bias[row];
#else
    logits[token * params.n_experts + row] = dot;
#endif
  } else {
#if HAS_SHARED_GATE
    shared_gate[2u * token] = 0.0;
    shared_gate[2u * token + 1u] = 1.0 / (1.0 + exp(-dot));
#endif
  }
}
