// quant_iq2_xxs.wgsl: block decoder for IQ2_XXS (see quant_common.wgsl for the
// decoder interface). Not a kernel: kernels #include it through the DECODER
// define.
//
// IQ2_XXS super-block, 66 bytes, 256 elements (llama.cpp's block_iq2_xxs):
//   bytes 0..1    d, IEEE half
//   bytes 2..65   eight 8-byte sub-blocks of 32 elements; sub-block s holds two
//                 u32 at byte 2 + 8s: the first has 4 grid indices (byte l for
//                 group 4s + l), the second 4 seven-bit sign indices (bits
//                 7l..7l+6) and a 4-bit scale (bits 28..31)
//   element = d * (0.5 + scale) * 0.25 * grid byte * sign, all exact.
// Grid: Q_IQ2XXS_GRID (quant_iq_grids_iq2xxs.wgsl), packed, a module-scope
// const array read with one dynamic index per call; its header says why.
// Signs: q_iq_signs (quant_iq_common.wgsl).
//
// Provides: QK = 256, QBYTES = 66,
//   fn dequant8(block_byte, g) -> array<f32, 8>: elements [8g, 8g + 8) of the
//   block starting at byte `block_byte` (any alignment), g in 0..31.
// Needs: fn wload(word: u32) -> u32 from the including kernel.

#include "quant_iq_common.wgsl"
#include "quant_iq_grids_iq2xxs.wgsl"

const QK: u32 = 256u;
const QBYTES: u32 = 66u;

fn dequant8(block_byte: u32, g: u32) -> array<f32, 8> {
  let sub = block_byte + 2u + 8u * (g >> 2u);
  let l = g & 3u;
  let aux = q_u32(sub + 4u);
  let db = q_half_at(block_byte) * (0.5 + f32(aux >> 28u)) * 0.25;
  let index = q_u8(sub + l);
  let entry = q_iq_entry(Q_IQ2XXS_GRID[index >> 1u], index);
  return q_iq_signed8(q_iq2_magnitudes(entry), db, q_iq_signs((aux >> (7u * l)) & 127u));
}
