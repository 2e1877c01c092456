// embedding.wgsl: gathers rows of a token embedding table, in any block
// format (through the format's decoder), to f32, optionally scaled:
//
//   out[t][i] = scale * token_embd[ids[t]][i]
//
// An id >= vocab gives a row of zeros (a shader cannot report the error).
// The table binding may hold only rows [first_row, first_row + rows) of the
// vocabulary (one piece of a table split across buffers, one dispatch per
// piece): an id < vocab outside them is skipped, its outputs left as they are.
//
// Bindings (group 0):
//   0  params     uniform              Params { n_tokens, hidden, vocab, table_offset_bytes: u32, scale: f32,
//                                               first_row, rows: u32 }
//   1  table      storage, read        array<u32>  the table's raw bytes as little-endian words:
//                                                  [rows][hidden] row-major, row first_row + r at byte
//                                                  table_offset_bytes + r (hidden / QK) QBYTES
//   2  ids        storage, read        array<u32>  [n_tokens]
//   3  out        storage, read_write  array<f32>  [n_tokens][hidden]
//
// Geometry: one thread per 8 consecutive outputs of a row (one dequant8
// call), WG threads per workgroup; the linear index is
// (wid.y * num_workgroups.x + wid.x) * WG + lid, groups of a row fastest;
// threads past n_tokens * hidden / 8 return.
//
// Overrides: WG, threads per workgroup (default 64).
// Defines:   DECODER (string), the decoder file, e.g. "quant_q4_k.wgsl".

#include DECODER

override WG: u32 = 64u;

struct Params {
  n_tokens: u32,
  hidden: u32,
  vocab: u32,
  table_offset_bytes: u32,
  scale: f32,
  first_row: u32,
  rows: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> table: array<u32>;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn wload(word: u32) -> u32 {
  return table[word];
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let groups_per_row = params.hidden / 8u;
  let index = (wid.y * nwg.x + wid.x) * WG + lid;
  if (index >= params.n_tokens * groups_per_row) {
    return;
  }
  let token = index / groups_per_row;
  let group = index % groups_per_row; // elements [8 group, 8 group + 8) of the row
  let first = token * params.hidden + 8u * group;
  let id = ids[token];
  if (id >= params.vocab) {
    for (var i = 0u; i < 8u; i++) {
      out[first + i] = 0.0;
    }
    return;
  }
  if (id < params.first_row || id - params.first_row >= params.rows) {
    return;
  }
  let groups_per_block = QK / 8u;
  let row_byte = params.table_offset_bytes + (id - params.first_row) * (params.hidden / QK) * QBYTES;
  let values = dequant8(row_byte + (group / groups_per_block) * QBYTES, group % groups_per_block);
  for (var i = 0u; i < 8u; i++) {
    out[first + i] = values[i] * params.scale;
  }
}
