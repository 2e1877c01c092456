// quant_iq1_m.wgsl: block decoder for IQ1_M (see quant_common.wgsl for the
// decoder interface). Not a kernel: kernels #include it through the DECODER
// define.
//
// IQ1_M super-block, 56 bytes, 256 elements (llama.cpp's block_iq1_m):
//   bytes 0..31   qs[32]: low 8 bits of group g's 11-bit grid index
//   bytes 32..47  qh[16]: nibble g % 2 of qh[g / 2] holds the index's bits
//                 8..10 (nibble bits 0..2) and the sign of the delta (bit 3)
//   bytes 48..55  four u16 scale words: the top nibble of word k is bits
//                 4k..4k+3 of d (an IEEE half); sub-block s = g / 4 has its
//                 3-bit scale at bit 6 (s % 2) + 3 ((g / 2) % 2) of word s / 2
//   element = d * (2 scale + 1) * (grid value + delta), grid values -1, 0, 1,
//   delta = +-0.125 (IQ1M_DELTA); all exact.
// Grid: Q_IQ1S_GRID (quant_iq_grids_iq1s.wgsl), shared with IQ1_S, packed, a
// module-scope const array read with one dynamic index per call; its header
// says why.
//
// Provides: QK = 256, QBYTES = 56,
//   fn dequant8(block_byte, g) -> array<f32, 8>: elements [8g, 8g + 8) of the
//   block starting at byte `block_byte` (any alignment), g in 0..31.
// Needs: fn wload(word: u32) -> u32 from the including kernel.

#include "quant_iq_common.wgsl"
#include "quant_iq_grids_iq1s.wgsl"

const QK: u32 = 256u;
const QBYTES: u32 = 56u;

fn dequant8(block_byte: u32, g: u32) -> array<f32, 8> {
  // Scale words 0 and 1 in words.x, 2 and 3 in words.y.
  let words = q_u32x2(block_byte + 48u);
  let d_bits = ((words.x >> 12u) & 0xfu) | ((words.x >> 28u) << 4u) |
    (((words.y >> 12u) & 0xfu) << 8u) | ((words.y >> 28u) << 12u);
  let s = g >> 2u;
  let word = words[s >> 2u] >> (16u * ((s >> 1u) & 1u));
  let scale = (word >> (6u * (s & 1u) + 3u * ((g >> 1u) & 1u))) & 7u;
  let dl = q_half(d_bits) * f32(2u * scale + 1u);
  let nibble = (q_u8(block_byte + 32u + (g >> 1u)) >> (4u * (g & 1u))) & 0xfu;
  let delta = select(0.125, -0.125, (nibble & 8u) != 0u);
  let index = q_u8(block_byte + g) | ((nibble & 7u) << 8u);
  let entry = q_iq_entry(Q_IQ1S_GRID[index >> 1u], index);
  return q_iq1_group(entry, dl, delta);
}
