// quant_iq_common.wgsl: helpers shared by the i-quant decoders
// (quant_iq*.wgsl).
// Not a kernel: #include'd by those decoders, after quant_common.wgsl.
//
// The i-quants code 8 elements at a time as a grid entry of small unsigned
// magnitudes (ggml's grids, packed in quant_iq_grids_*.wgsl: 16 bits an entry,
// entry i in half i % 2 of word i / 2, a 2- or 3-bit code per value) and 8
// sign bits; the sign bits come from a 7-bit index through ggml's
// ksigns_iq2xs table, which is the index itself with its parity as bit 7 (so
// the count of negative signs is even): q_iq_signs computes it instead of
// looking it up.

#include "quant_common.wgsl"

// kvalues_iq4nl: the 16 non-linear levels of IQ4_NL and IQ4_XS.
const Q_KVALUES_IQ4NL = array<f32, 16>(
  -127.0, -104.0, -83.0, -65.0, -49.0, -35.0, -22.0, -10.0,
  1.0, 13.0, 25.0, 38.0, 53.0, 69.0, 89.0, 113.0,
);

// 16-bit entry `index` of a packed grid, given the word holding it.
fn q_iq_entry(word: u32, index: u32) -> u32 {
  return (word >> (16u * (index & 1u))) & 0xffffu;
}

// The 8 magnitudes of an IQ2 grid entry: 2-bit codes 0, 1, 2 for 8, 25, 43.
fn q_iq2_magnitudes(entry: u32) -> array<u32, 8> {
  var out: array<u32, 8>;
  for (var j = 0u; j < 8u; j++) {
    let c = (entry >> (2u * j)) & 3u;
    out[j] = 8u + 17u * c + (c >> 1u);
  }
  return out;
}

// The 8 sign bits of 7-bit sign index `index` (ksigns_iq2xs[index]).
fn q_iq_signs(index: u32) -> u32 {
  return index | ((countOneBits(index) & 1u) << 7u);
}

// Elements scale * magnitudes[j], negated where bit j of `signs` is set: the
// CPU's scale * grid * (+-1), exact for these magnitudes.
fn q_iq_signed8(magnitudes: array<u32, 8>, scale: f32, signs: u32) -> array<f32, 8> {
  var out: array<f32, 8>;
  for (var j = 0u; j < 8u; j++) {
    let v = scale * f32(magnitudes[j]);
    out[j] = select(v, -v, ((signs >> j) & 1u) != 0u);
  }
  return out;
}

// Elements dl * (value + delta) of IQ1_S / IQ1_M grid entry `entry` (16 bits,
// value j = bits 2j..2j+1 minus 1): the grid value plus the delta is exact,
// and so is the product.
fn q_iq1_group(entry: u32, dl: f32, delta: f32) -> array<f32, 8> {
  var out: array<f32, 8>;
  for (var j = 0u; j < 8u; j++) {
    out[j] = dl * ((f32((entry >> (2u * j)) & 3u) - 1.0) + delta);
  }
  return out;
}
