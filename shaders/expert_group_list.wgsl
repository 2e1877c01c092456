// expert_group_list.wgsl: builds the group list of the grouped (prefill)
// expert FFN on the GPU, from the router's ids and the expert slot table, so
// prefill gathers tokens by expert without reading the routing back.
//
//   list[0..3]                 header: n_groups, 0, 0, 0
//   list[4 + 4g .. 4 + 4g + 3] group g: slab, slot offset in bytes, index in
//                              `list` of its first pair index, pair count
//   list[pair_base ..]         the pair indices, pair_base = 4 + 4 n_pairs
//                              (room for the most groups there can be)
//
// Experts come in ascending id order, each expert's pairs ascending, cut into
// groups of at most TILE: the list src/kernels/expert-slots.ts's
// groupPairsByExpert + packGroupList would build on the CPU, except that the
// pair indices start at the fixed pair_base. Pairs routed to null or masked
// ids (>= n_real_experts) are left out. An expert whose table entry is
// NO_SLAB keeps it: its pairs produce zeros.
//
// Bindings (group 0):
//   0  params   uniform              Params
//   1  routing  storage, read        array<u32>  [tokens, 2 top_k]: ids, then weights
//   2  table    storage, read        array<u32>  [layers * n_experts] x {slab, offset_bytes}
//   3  list     storage, read_write  array<u32>  4 + 5 n_pairs words
//
// Geometry: one workgroup of WG threads. Counting uses workgroup atomics, but
// what is written does not depend on their order: thread e scans the ids in
// pair order to place expert e's pairs, so the list is the same every run.
//
// Overrides: WG (threads), MAX_EXPERTS (the largest n_real_experts).

override WG: u32 = 256u;
override MAX_EXPERTS: u32 = 512u;

struct Params {
  n_pairs: u32,         // tokens * top_k
  top_k: u32,
  n_real_experts: u32,  // ids at or past this are null or masked: left out
  table_base: u32,      // this layer's first table entry (layer * n_experts)
  tile: u32,            // most pairs per group
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> routing: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<u32>;
@group(0) @binding(3) var<storage, read_write> list: array<u32>;

var<workgroup> counts: array<atomic<u32>, MAX_EXPERTS>;
var<workgroup> first_pair: array<u32, MAX_EXPERTS>;
var<workgroup> first_group: array<u32, MAX_EXPERTS>;

fn routed_expert(pair: u32) -> u32 {
  let t = pair / params.top_k;
  return routing[2u * params.top_k * t + pair % params.top_k];
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  // Workgroup memory starts zeroed: counts need no clearing.
  let n_experts = params.n_real_experts;
  for (var p = lid; p < params.n_pairs; p += WG) {
    let e = routed_expert(p);
    if (e < n_experts) {
      atomicAdd(&counts[e], 1u);
    }
  }
  workgroupBarrier();

  // Prefix sums over at most MAX_EXPERTS counts: one thread is fast enough.
  if (lid == 0u) {
    var pairs = 0u;
    var groups = 0u;
    for (var e = 0u; e < n_experts; e++) {
      let count = atomicLoad(&counts[e]);
      first_pair[e] = pairs;
      first_group[e] = groups;
      pairs += count;
      groups += (count + params.tile - 1u) / params.tile;
    }
    list[0] = groups;
    list[1] = 0u;
    list[2] = 0u;
    list[3] = 0u;
  }
  workgroupBarrier();

  let pair_base = 4u + 4u * params.n_pairs;
  for (var e = lid; e < n_experts; e += WG) {
    let count = atomicLoad(&counts[e]);
    if (count == 0u) {
      continue;
    }
    let entry = 2u * (params.table_base + e);
    let start = pair_base + first_pair[e];
    for (var i = 0u; i * params.tile < count; i++) {
      let record = 4u + 4u * (first_group[e] + i);
      list[record] = table[entry];
      list[record + 1u] = table[entry + 1u];
      list[record + 2u] = start + i * params.tile;
      list[record + 3u] = min(params.tile, count - i * params.tile);
    }
    var placed = 0u;
    for (var p = 0u; p < params.n_pairs && placed < count; p++) {
      if (routed_expert(p) == e) {
        list[start + placed] = p;
        placed++;
      }
    }
  }
}
