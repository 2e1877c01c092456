// quant_tq1_0.wgsl: block decoder for TQ1_0 (see quant_common.wgsl for the
// decoder interface). Not a kernel: kernels #include it through the DECODER
// define.
//
// TQ1_0 super-block, 54 bytes, 256 elements (llama.cpp's block_tq1_0):
//   bytes 0..47   qs[48]: 5 trits a byte, as the fraction byte / 256 of 3^5;
//                 trit n (most significant first) of byte b is
//                 ((b * 3^n) mod 256) * 3 / 256
//   bytes 48..51  qh[4]: 4 trits a byte, likewise
//   bytes 52..53  d, IEEE half
//   Element e < 160: trit e / 32 of qs[e % 32]; 160 <= e < 240, e' = e - 160:
//   trit e' / 16 of qs[32 + e' % 16]; e >= 240, e'' = e - 240: trit e'' / 4
//   of qh[e'' % 4]. element = (trit - 1) * d, exact.
//
// Provides: QK = 256, QBYTES = 54,
//   fn dequant8(block_byte, g) -> array<f32, 8>: elements [8g, 8g + 8) of the
//   block starting at byte `block_byte` (any alignment), g in 0..31.
// Needs: fn wload(word: u32) -> u32 from the including kernel.

#include "quant_common.wgsl"

const QK: u32 = 256u;
const QBYTES: u32 = 54u;

const Q_POW3 = array<u32, 5>(1u, 3u, 9u, 27u, 81u);

fn dequant8(block_byte: u32, g: u32) -> array<f32, 8> {
  let d = q_half_at(block_byte + 52u);
  // The 8 source bytes, and the trit taken from elements 0..3 and 4..7 of them.
  var bytes: vec2<u32>;
  var trits: vec2<u32>;
  if (g < 20u) {
    bytes = q_u32x2(block_byte + 8u * (g & 3u));
    trits = vec2<u32>(g >> 2u);
  } else if (g < 30u) {
    bytes = q_u32x2(block_byte + 32u + 8u * (g & 1u));
    trits = vec2<u32>((g - 20u) >> 1u);
  } else {
    bytes = vec2<u32>(q_u32(block_byte + 48u));
    trits = vec2<u32>(2u * (g - 30u), 2u * (g - 30u) + 1u);
  }
  var out: array<f32, 8>;
  for (var i = 0u; i < 8u; i++) {
    let q = (q_byte_of(bytes[i / 4u], i % 4u) * Q_POW3[trits[i / 4u]]) & 0xffu;
    out[i] = f32(i32((q * 3u) >> 8u) - 1) * d;
  }
  return out;
}
