// expert_ffn_common.wgsl: what the expert FFN kernels (expert_ffn_gate_up,
// expert_ffn_down, expert_ffn_combine) share. Not a kernel: it is #include'd.
//
// Declares the uniform block (binding 0) and the routing buffer (binding 2),
// and reads routed PAIRS from it: pair p = t * top_k + j is token t's j-th
// expert. The routing buffer is the router's output, 2 top_k words per
// token: the ids, then the weights' f32 bits.
//
// Modes, activations and biases are uniforms rather than overrides: they
// cost one uniform branch per row, and keep the number of pipelines (each a
// slow compile on software adapters) to one per format and tile.
//
// Overrides read: WG (threads per workgroup), TPR (threads per matrix row, a
// power of two dividing WG).

override WG: u32 = 64u;
override TPR: u32 = 8u;

const MODE_PAIR_LIST: u32 = 0u;     // slots: a slot ref per routed pair
const MODE_EXPERT_TABLE: u32 = 1u;  // slots: a slot ref per (layer, expert)
const MODE_GROUPED: u32 = 2u;       // slots: a group list (prefill)
const ACTIVATION_SILU: u32 = 0u;
const ACTIVATION_GELU: u32 = 1u;
const ACTIVATION_SWIGLU_OAI: u32 = 2u;

struct Params {
  hidden: u32,            // H: x and y row length, rows of down
  ffn: u32,               // F: rows of gate and up, h row length
  top_k: u32,
  n_pairs: u32,           // tokens * top_k
  n_real_experts: u32,    // ids at or past this are null experts: skipped
  table_base: u32,        // MODE_EXPERT_TABLE: this layer's first table entry (layer * n_experts)
  gate_offset: u32,       // byte offsets of the parts of a slot, from its start
  up_offset: u32,
  down_offset: u32,
  gate_bias_offset: u32,  // with has_biases: f32 [F], [F], [H]
  up_bias_offset: u32,
  down_bias_offset: u32,
  mode: u32,              // MODE_*
  activation: u32,        // ACTIVATION_*
  has_biases: u32,        // 1: slots hold f32 biases at the offsets above
  oai_alpha: f32,         // ACTIVATION_SWIGLU_OAI's alpha and limit
  oai_limit: f32,
}

fn grouped() -> bool {
  return params.mode == MODE_GROUPED;
}

fn has_biases() -> bool {
  return params.has_biases != 0u;
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(2) var<storage, read> routing: array<u32>;

fn routed_expert(pair: u32) -> u32 {
  let t = pair / params.top_k;
  return routing[2u * params.top_k * t + pair % params.top_k];
}

fn routed_weight(pair: u32) -> f32 {
  let t = pair / params.top_k;
  return bitcast<f32>(routing[2u * params.top_k * t + params.top_k + pair % params.top_k]);
}
