// quant_q4_k.wgsl: block decoder for Q4_K (see quant_common.wgsl for the
// decoder interface). Not a kernel: kernels #include it through the DECODER
// define.
//
// Q4_K super-block, 144 bytes, 256 elements (llama.cpp's block_q4_K):
//   bytes 0..1     d, IEEE half;  bytes 2..3  dmin, IEEE half
//   bytes 4..15    scales[12]: eight 6-bit scales and mins (q_k_scale_min)
//   bytes 16..143  qs[128]: element e of sub-block s = e / 32 is the low
//                  (even s) or high (odd s) nibble of qs[32 (s / 2) + e % 32]
//   element e = (d * scale_s) * q - (dmin * min_s); both products exact, so
//   the one rounding is the subtraction's, as on the CPU.
//
// Provides: QK = 256, QBYTES = 144,
//   fn dequant8(block_byte, g) -> array<f32, 8>: elements [8g, 8g + 8) of the
//   block starting at byte `block_byte` (any alignment), g in 0..31.
// Needs: fn wload(word: u32) -> u32 from the including kernel.

#include "quant_common.wgsl"

const QK: u32 = 256u;
const QBYTES: u32 = 144u;

fn dequant8(block_byte: u32, g: u32) -> array<f32, 8> {
  let s = g >> 2u;
  let dd = q_u32(block_byte);
  let scale_min = q_k_scale_min(block_byte + 4u, s);
  let ds = q_half(dd) * f32(scale_min.x);
  let ms = q_half(dd >> 16u) * f32(scale_min.y);
  let qs = q_u32x2(block_byte + 16u + 32u * (s >> 1u) + 8u * (g & 3u));
  let shift = 4u * (s & 1u);
  var out: array<f32, 8>;
  for (var i = 0u; i < 8u; i++) {
    let q = (qs[i / 4u] >> (8u * (i % 4u) + shift)) & 0xfu;
    out[i] = ds * f32(q) - ms;
  }
  return out;
}
