// quant_iq1_s.wgsl: block decoder for IQ1_S (see quant_common.wgsl for the
// decoder interface). Not a kernel: kernels #include it through the DECODER
// define.
//
// IQ1_S super-block, 50 bytes, 256 elements (llama.cpp's block_iq1_s):
//   bytes 0..1    d, IEEE half
//   bytes 2..33   qs[32]: low 8 bits of group g's 11-bit grid index
//   bytes 34..49  qh u16[8], one per 32-element sub-block s: bits 3l..3l+2 are
//                 the index's bits 8..10 for group 4s + l, bits 12..14 a 3-bit
//                 scale, bit 15 the sign of the delta
//   element = d * (2 scale + 1) * (grid value + delta), grid values -1, 0, 1,
//   delta = +-0.125 (IQ1S_DELTA); all exact.
// Grid: Q_IQ1S_GRID (quant_iq_grids_iq1s.wgsl), packed, a module-scope const
// array read with one dynamic index per call; its header says why.
//
// Provides: QK = 256, QBYTES = 50,
//   fn dequant8(block_byte, g) -> array<f32, 8>: elements [8g, 8g + 8) of the
//   block starting at byte `block_byte` (any alignment), g in 0..31.
// Needs: fn wload(word: u32) -> u32 from the including kernel.

#include "quant_iq_common.wgsl"
#include "quant_iq_grids_iq1s.wgsl"

const QK: u32 = 256u;
const QBYTES: u32 = 50u;

fn dequant8(block_byte: u32, g: u32) -> array<f32, 8> {
  let qh = q_u16(block_byte + 34u + 2u * (g >> 2u));
  let dl = q_half_at(block_byte) * f32(2u * ((qh >> 12u) & 7u) + 1u);
  let delta = select(0.125, -0.125, (qh & 0x8000u) != 0u);
  let index = q_u8(block_byte + 2u + g) | (((qh >> (3u * (g & 3u))) & 7u) << 8u);
  let entry = q_iq_entry(Q_IQ1S_GRID[index >> 1u], index);
  return q_iq1_group(entry, dl, delta);
}
