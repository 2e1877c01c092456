// quant_iq2_s.wgsl: block decoder for IQ2_S (see quant_common.wgsl for the
// decoder interface). Not a kernel: kernels #include it through the DECODER
// define.
//
// IQ2_S super-block, 82 bytes, 256 elements (llama.cpp's block_iq2_s):
//   bytes 0..1    d, IEEE half
//   bytes 2..33   qs[32]: low 8 bits of group g's 10-bit grid index
//   bytes 34..65  signs[32]: group g's 8 sign bits
//   bytes 66..73  qh[8]: bit pair g % 4 of qh[g / 4] is the index's bits 8..9
//   bytes 74..81  scales[8]: 4-bit scales as IQ2_XS's
//   element = d * (0.5 + scale) * 0.25 * grid byte * sign, all exact.
// Grid: Q_IQ2S_GRID (quant_iq_grids_iq2s.wgsl), packed, a module-scope const
// array read with one dynamic index per call; its header says why.
//
// Provides: QK = 256, QBYTES = 82,
//   fn dequant8(block_byte, g) -> array<f32, 8>: elements [8g, 8g + 8) of the
//   block starting at byte `block_byte` (any alignment), g in 0..31.
// Needs: fn wload(word: u32) -> u32 from the including kernel.

#include "quant_iq_common.wgsl"
#include "quant_iq_grids_iq2s.wgsl"

const QK: u32 = 256u;
const QBYTES: u32 = 82u;

fn dequant8(block_byte: u32, g: u32) -> array<f32, 8> {
  let scale = (q_u8(block_byte + 74u + (g >> 2u)) >> (4u * ((g >> 1u) & 1u))) & 0xfu;
  let db = q_half_at(block_byte) * (0.5 + f32(scale)) * 0.25;
  let high = (q_u8(block_byte + 66u + (g >> 2u)) >> (2u * (g & 3u))) & 3u;
  let index = q_u8(block_byte + 2u + g) | (high << 8u);
  let entry = q_iq_entry(Q_IQ2S_GRID[index >> 1u], index);
  return q_iq_signed8(q_iq2_magnitudes(entry), db, q_u8(block_byte + 34u + g));
}
