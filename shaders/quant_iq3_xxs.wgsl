// quant_iq3_xxs.wgsl: block decoder for IQ3_XXS (see quant_common.wgsl for the
// decoder interface). Not a kernel: kernels #include it through the DECODER
// define.
//
// IQ3_XXS super-block, 98 bytes, 256 elements (llama.cpp's block_iq3_xxs):
//   bytes 0..1    d, IEEE half
//   bytes 2..65   qs[64]: group g's two 8-bit grid indices qs[2g] (elements
//                 0..3) and qs[2g + 1] (elements 4..7), 4 bytes per entry
//   bytes 66..97  one u32 per 32-element sub-block s: 4 seven-bit sign indices
//                 (bits 7l..7l+6 for group 4s + l) and a 4-bit scale (28..31)
//   element = d * (0.5 + scale) * 0.5 * grid byte * sign, all exact.
// Grid: Q_IQ3XXS_GRID (quant_iq_grids_iq3xxs.wgsl), packed (3-bit code c for
// 4 + 8c, except 7 for 62), a module-scope const array read with two dynamic
// indices per call; its header says why. Signs: q_iq_signs
// (quant_iq_common.wgsl).
//
// Provides: QK = 256, QBYTES = 98,
//   fn dequant8(block_byte, g) -> array<f32, 8>: elements [8g, 8g + 8) of the
//   block starting at byte `block_byte` (any alignment), g in 0..31.
// Needs: fn wload(word: u32) -> u32 from the including kernel.

#include "quant_iq_common.wgsl"
#include "quant_iq_grids_iq3xxs.wgsl"

const QK: u32 = 256u;
const QBYTES: u32 = 98u;

fn dequant8(block_byte: u32, g: u32) -> array<f32, 8> {
  let aux = q_u32(block_byte + 66u + 4u * (g >> 2u));
  let db = q_half_at(block_byte) * (0.5 + f32(aux >> 28u)) * 0.5;
  let indices = q_u16(block_byte + 2u + 2u * g);
  let index0 = indices & 0xffu;
  let index1 = indices >> 8u;
  // Elements 0..3 from entry index0, 4..7 from entry index1.
  let entries = q_iq_entry(Q_IQ3XXS_GRID[index0 >> 1u], index0) | (q_iq_entry(Q_IQ3XXS_GRID[index1 >> 1u], index1) << 12u);
  var magnitudes: array<u32, 8>;
  for (var j = 0u; j < 8u; j++) {
    let c = (entries >> (3u * j)) & 7u;
    magnitudes[j] = select(4u + 8u * c, 62u, c == 7u);
  }
  return q_iq_signed8(magnitudes, db, q_iq_signs((aux >> (7u * (g & 3u))) & 127u));
}
