// quant_q6_k.wgsl: block decoder for Q6_K (see quant_common.wgsl for the
// decoder interface). Not a kernel: kernels #include it through the DECODER
// define.
//
// Q6_K super-block, 210 bytes, 256 elements (llama.cpp's block_q6_K):
//   bytes 0..127    ql[128]: low 4 bits
//   bytes 128..191  qh[64]: top 2 bits
//   bytes 192..207  scales[16], int8, of the 16-element sub-block e / 16
//   bytes 208..209  d, IEEE half
//   Element e, with half h = e / 128, quarter k = (e / 32) % 4, l = e % 32:
//   low 4 bits = low (k < 2) or high (k >= 2) nibble of ql[64 h + 32 (k % 2) + l],
//   top 2 bits = bit pair k of qh[32 h + l]; q = that 6-bit value - 32;
//   element = (d * scale) * q   (the first product is exact; the second is
//   rounded once, as the CPU's store to f32 rounds it)
//
// Provides: QK = 256, QBYTES = 210,
//   fn dequant8(block_byte, g) -> array<f32, 8>: elements [8g, 8g + 8) of the
//   block starting at byte `block_byte` (any alignment), g in 0..31.
// Needs: fn wload(word: u32) -> u32 from the including kernel.

#include "quant_common.wgsl"

const QK: u32 = 256u;
const QBYTES: u32 = 210u;

fn dequant8(block_byte: u32, g: u32) -> array<f32, 8> {
  let h = g >> 4u;
  let k = (g >> 2u) & 3u;
  let l0 = 8u * (g & 3u);
  let scale = bitcast<i32>(q_u8(block_byte + 192u + (g >> 1u)) << 24u) >> 24u;
  let ds = q_half_at(block_byte + 208u) * f32(scale);
  let lows = q_u32x2(block_byte + 64u * h + 32u * (k & 1u) + l0);
  let low_shift = 4u * (k >> 1u);
  let highs = q_u32x2(block_byte + 128u + 32u * h + l0);
  let high_shift = 2u * k;
  var out: array<f32, 8>;
  for (var i = 0u; i < 8u; i++) {
    let bit = 8u * (i % 4u);
    let low = (lows[i / 4u] >> (bit + low_shift)) & 0xfu;
    let high = (highs[i / 4u] >> (bit + high_shift)) & 3u;
    out[i] = ds * f32(i32(low | (high << 4u)) - 32);
  }
  return out;
}
