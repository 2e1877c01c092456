// expert_ffn_common.wgsl: what the expert FFN kernels (expert_ffn_gate_up,
// expert_ffn_down, expert_ffn_combine) share. Not a kernel: it is #include'd.
//
// Declares the uniform block (binding 0) and the routing buffer (binding 2),
// and reads routed PAIRS from it: pair p = t * top_k + j is token t's j-th
// expert. The routing buffer is the router's output, 2 top_k words per
// token: the ids, then the weights' f32 bits.
//
// Overrides read: WG (threads per workgroup), TPR (threads per matrix row, a
// power of two dividing WG), GROUPED (bool: work comes from a group list),
// EXPERT_TABLE (bool: slots come from a per-(layer, expert) table),
// HAS_BIASES (bool: slots hold f32 biases).

override WG: u32 = 64u;
override TPR: u32 = 8u;
override GROUPED: bool = false;
override EXPERT_TABLE: bool = false;
override HAS_BIASES: bool = false;

struct Params {
  hidden: u32,            // H: x and y row length, rows of down
  ffn: u32,               // F: rows of gate and up, h row length
  top_k: u32,
  n_pairs: u32,           // tokens * top_k
  n_real_experts: u32,    // ids at or past this are null experts: skipped
  table_base: u32,        // EXPERT_TABLE: this layer's first table entry (layer * n_experts)
  gate_offset: u32,       // byte offsets of the parts of a slot, from its start
  up_offset: u32,
  down_offset: u32,
  gate_bias_offset: u32,  // HAS_BIASES: f32 [F], [F], [H]
  up_bias_offset: u32,
  down_bias_offset: u32,
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
