// quant_iq2_xs.wgsl: block decoder for IQ2_XS (see quant_common.wgsl for the
// decoder interface). Not a kernel: kernels #include it through the DECODER
// define.
//
// IQ2_XS super-block, 74 bytes, 256 elements (llama.cpp's block_iq2_xs):
//   bytes 0..1    d, IEEE half
//   bytes 2..65   qs u16[32]: group g's 9-bit grid index (bits 0..8) and
//                 7-bit sign index (bits 9..15)
//   bytes 66..73  scales[8]: group g's 4-bit scale is the low (g % 4 < 2) or
//                 high nibble of scales[g / 4]
//   element = d * (0.5 + scale) * 0.25 * grid byte * sign, all exact.
// Grid: Q_IQ2XS_GRID (quant_iq_grids_iq2xs.wgsl), packed, a module-scope const
// array read with one dynamic index per call; its header says why.
// Signs: q_iq_signs (quant_iq_common.wgsl).
//
// Provides: QK = 256, QBYTES = 74,
//   fn dequant8(block_byte, g) -> array<f32, 8>: elements [8g, 8g + 8) of the
//   block starting at byte `block_byte` (any alignment), g in 0..31.
// Needs: fn wload(word: u32) -> u32 from the including kernel.

#include "quant_iq_common.wgsl"
#include "quant_iq_grids_iq2xs.wgsl"

const QK: u32 = 256u;
const QBYTES: u32 = 74u;

fn dequant8(block_byte: u32, g: u32) -> array<f32, 8> {
  let scale = (q_u8(block_byte + 66u + (g >> 2u)) >> (4u * ((g >> 1u) & 1u))) & 0xfu;
  let db = q_half_at(block_byte) * (0.5 + f32(scale)) * 0.25;
  let q = q_u16(block_byte + 2u + 2u * g);
  let index = q & 511u;
  let entry = q_iq_entry(Q_IQ2XS_GRID[index >> 1u], index);
  return q_iq_signed8(q_iq2_magnitudes(entry), db, q_iq_signs(q >> 9u));
}
