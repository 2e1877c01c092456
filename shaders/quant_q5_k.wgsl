// quant_q5_k.wgsl: block decoder for Q5_K (see quant_common.wgsl for the
// decoder interface). Not a kernel: kernels #include it through the DECODER
// define.
//
// Q5_K super-block, 176 bytes, 256 elements (llama.cpp's block_q5_K):
//   bytes 0..1     d, IEEE half;  bytes 2..3  dmin, IEEE half
//   bytes 4..15    scales[12]: eight 6-bit scales and mins (q_k_scale_min)
//   bytes 16..47   qh[32]: bit s of qh[e % 32] is element e's fifth bit
//   bytes 48..175  qs[128]: low 4 bits, laid out as Q4_K's
//   element e = (d * scale_s) * q - (dmin * min_s), q in 0..31,
//   s = e / 32 (products exact, one rounding as on the CPU)
//
// Provides: QK = 256, QBYTES = 176,
//   fn dequant8(block_byte, g) -> array<f32, 8>: elements [8g, 8g + 8) of the
//   block starting at byte `block_byte` (any alignment), g in 0..31.
// Needs: fn wload(word: u32) -> u32 from the including kernel.

#include "quant_common.wgsl"

const QK: u32 = 256u;
const QBYTES: u32 = 176u;

fn dequant8(block_byte: u32, g: u32) -> array<f32, 8> {
  let s = g >> 2u;
  let dd = q_u32(block_byte);
  let scale_min = q_k_scale_min(block_byte + 4u, s);
  let ds = q_half(dd) * f32(scale_min.x);
  let ms = q_half(dd >> 16u) * f32(scale_min.y);
  let highs = q_u32x2(block_byte + 16u + 8u * (g & 3u));
  let lows = q_u32x2(block_byte + 48u + 32u * (s >> 1u) + 8u * (g & 3u));
  let low_shift = 4u * (s & 1u);
  var out: array<f32, 8>;
  for (var i = 0u; i < 8u; i++) {
    let bit = 8u * (i % 4u);
    let low = (lows[i / 4u] >> (bit + low_shift)) & 0xfu;
    let high = (highs[i / 4u] >> (bit + s)) & 1u;
    out[i] = ds * f32(low | (high << 4u)) - ms;
  }
  return out;
}
