// quant_iq3_s.wgsl: block decoder for IQ3_S (see quant_common.wgsl for the
// decoder interface). Not a kernel: kernels #include it through the DECODER
// define.
//
// IQ3_S super-block, 110 bytes, 256 elements (llama.cpp's block_iq3_s):
//   bytes 0..1     d, IEEE half
//   bytes 2..65    qs[64]: low 8 bits of group g's two 9-bit grid indices,
//                  qs[2g] (elements 0..3) and qs[2g + 1] (elements 4..7)
//   bytes 66..73   qh[8]: bits 2(g % 4) and 2(g % 4) + 1 of qh[g / 4] are
//                  those indices' bit 8
//   bytes 74..105  signs[32]: group g's 8 sign bits
//   bytes 106..109 scales[4]: sub-block s = g / 4 has the 4-bit scale in
//                  nibble s % 2 of scales[s / 2]
//   element = d * (1 + 2 scale) * grid byte * sign, all exact.
// Grid: Q_IQ3S_GRID (quant_iq_grids_iq3s.wgsl), packed (3-bit code c for
// 2c + 1), a module-scope const array read with two dynamic indices per
// call; its header says why.
//
// Provides: QK = 256, QBYTES = 110,
//   fn dequant8(block_byte, g) -> array<f32, 8>: elements [8g, 8g + 8) of the
//   block starting at byte `block_byte` (any alignment), g in 0..31.
// Needs: fn wload(word: u32) -> u32 from the including kernel.

#include "quant_iq_common.wgsl"
#include "quant_iq_grids_iq3s.wgsl"

const QK: u32 = 256u;
const QBYTES: u32 = 110u;

fn dequant8(block_byte: u32, g: u32) -> array<f32, 8> {
  let s = g >> 2u;
  let scale = (q_u8(block_byte + 106u + (s >> 1u)) >> (4u * (s & 1u))) & 0xfu;
  let db = q_half_at(block_byte) * f32(1u + 2u * scale);
  let high = q_u8(block_byte + 66u + s) >> (2u * (g & 3u));
  let indices = q_u16(block_byte + 2u + 2u * g);
  let index0 = (indices & 0xffu) | ((high & 1u) << 8u);
  let index1 = (indices >> 8u) | (((high >> 1u) & 1u) << 8u);
  // Elements 0..3 from entry index0, 4..7 from entry index1.
  let entries = q_iq_entry(Q_IQ3S_GRID[index0 >> 1u], index0) | (q_iq_entry(Q_IQ3S_GRID[index1 >> 1u], index1) << 12u);
  var magnitudes: array<u32, 8>;
  for (var j = 0u; j < 8u; j++) {
    magnitudes[j] = 2u * ((entries >> (3u * j)) & 7u) + 1u;
  }
  return q_iq_signed8(magnitudes, db, q_u8(block_byte + 74u + g));
}
