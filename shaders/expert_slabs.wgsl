// expert_slabs.wgsl: expert weights in slab buffers, for the expert FFN
// kernels that read them (expert_ffn_gate_up, expert_ffn_down). Not a
// kernel: it is #include'd after expert_ffn_common.wgsl.
//
// Declares the slot source (binding 3) and the slabs (bindings 5, 6, ...),
// defines `wload` for the block decoders over the slab chosen by the private
// `slab_index`, and resolves a workgroup's GROUP: which slot to read and
// which routed pairs to apply it to.
//
//   slots, binding 3, array<u32>, one of (src/kernels/expert-slots.ts packs them):
//     MODE_PAIR_LIST    [n_pairs] x {slab, offset_bytes}
//     MODE_EXPERT_TABLE [layers * n_experts] x {slab, offset_bytes};
//                       pair p reads entry table_base + routed_expert(p)
//     MODE_GROUPED      header {n_groups, 0, 0, 0}, then n_groups x
//                       {slab, offset_bytes, first, count}, then pair indices:
//                       group g's pairs are slots[first .. first + count)
//   Outside MODE_GROUPED, group g is pair g alone. A slab of NO_SLAB, or a pair
//   routed to a null expert (id >= n_real_experts), contributes nothing.
//
//   slab s, binding 5 + s, array<u32>: slots; a slot's parts are at the byte
//   offsets in params (its layout is ExpertSlotLayout).
//
// Defines read: HAS_SLAB_1 .. HAS_SLAB_7 (bool), whether slab s is bound.

const NO_SLAB: u32 = 0xffffffffu;

@group(0) @binding(3) var<storage, read> slots: array<u32>;
@group(0) @binding(5) var<storage, read> slab0: array<u32>;
#if HAS_SLAB_1
@group(0) @binding(6) var<storage, read> slab1: array<u32>;
#endif
#if HAS_SLAB_2
@group(0) @binding(7) var<storage, read> slab2: array<u32>;
#endif
#if HAS_SLAB_3
@group(0) @binding(8) var<storage, read> slab3: array<u32>;
#endif
#if HAS_SLAB_4
@group(0) @binding(9) var<storage, read> slab4: array<u32>;
#endif
#if HAS_SLAB_5
@group(0) @binding(10) var<storage, read> slab5: array<u32>;
#endif
#if HAS_SLAB_6
@group(0) @binding(11) var<storage, read> slab6: array<u32>;
#endif
#if HAS_SLAB_7
@group(0) @binding(12) var<storage, read> slab7: array<u32>;
#endif

// The slab `wload` reads; set before decoding a slot's weights.
var<private> slab_index: u32;

fn wload(word: u32) -> u32 {
  switch slab_index {
#if HAS_SLAB_1
    case 1u: { return slab1[word]; }
#endif
#if HAS_SLAB_2
    case 2u: { return slab2[word]; }
#endif
#if HAS_SLAB_3
    case 3u: { return slab3[word]; }
#endif
#if HAS_SLAB_4
    case 4u: { return slab4[word]; }
#endif
#if HAS_SLAB_5
    case 5u: { return slab5[word]; }
#endif
#if HAS_SLAB_6
    case 6u: { return slab6[word]; }
#endif
#if HAS_SLAB_7
    case 7u: { return slab7[word]; }
#endif
    default: { return slab0[word]; }
  }
}

// The f32 at byte `byte` (4-byte aligned) of the current slab: a bias value.
fn slab_f32(byte: u32) -> f32 {
  return bitcast<f32>(wload(byte / 4u));
}

struct ExpertGroup {
  slab: u32,   // NO_SLAB: the group contributes nothing
  base: u32,   // byte offset of the slot in its slab
  first: u32,  // MODE_GROUPED: index in `slots` of the first pair index; else the pair itself
  count: u32,  // pairs in the group; 0 past the last group
}

fn expert_group(g: u32) -> ExpertGroup {
  if (grouped()) {
    if (g >= slots[0]) {
      return ExpertGroup(NO_SLAB, 0u, 0u, 0u);
    }
    let record = 4u + 4u * g;
    return ExpertGroup(slots[record], slots[record + 1u], slots[record + 2u], slots[record + 3u]);
  }
  if (g >= params.n_pairs) {
    return ExpertGroup(NO_SLAB, 0u, 0u, 0u);
  }
  let expert = routed_expert(g);
  if (expert >= params.n_real_experts) {
    return ExpertGroup(NO_SLAB, 0u, g, 1u);
  }
  let entry = select(g, params.table_base + expert, params.mode == MODE_EXPERT_TABLE);
  return ExpertGroup(slots[2u * entry], slots[2u * entry + 1u], g, 1u);
}

// The i-th routed pair of `group` (i < group.count).
fn group_pair(group: ExpertGroup, i: u32) -> u32 {
  if (grouped()) {
    return slots[group.first + i];
  }
  return group.first;
}
