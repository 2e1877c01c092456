// quant_common.wgsl: readers shared by the block-format decoders
// (quant_<format>.wgsl). Not a kernel: it is #include'd by the decoders.
//
// Every read goes through `fn wload(word: u32) -> u32`, which the INCLUDING
// kernel defines: it returns little-endian 32-bit word number `word` of the
// weight bytes (so a kernel may read one buffer, or pick among slab buffers,
// without the decoders knowing). Byte addresses below are byte indices into
// that same little-endian byte stream, at any alignment.
//
// Names declared here and in the decoders start with `q_` (besides the
// decoder interface QK, QBYTES and dequant8), so kernels must not use that
// prefix for their own declarations.
//
// Float decoding is exact, from the bits, subnormals included: the built-in
// unpack2x16float may flush f16 subnormals to zero, which would break bit
// equality with the CPU reference.

// The little-endian u32 that starts at byte `byte`, at any alignment.
fn q_u32(byte: u32) -> u32 {
  let word = byte >> 2u;
  let shift = (byte & 3u) * 8u;
  let low = wload(word);
  if (shift == 0u) {
    return low;
  }
  // A shift by 32 is not a no-op in WGSL, hence the aligned case above.
  return (low >> shift) | (wload(word + 1u) << (32u - shift));
}

fn q_u8(byte: u32) -> u32 {
  return (wload(byte >> 2u) >> ((byte & 3u) * 8u)) & 0xffu;
}

// The little-endian u16 at byte `byte`; one word read unless it straddles two.
fn q_u16(byte: u32) -> u32 {
  if ((byte & 3u) == 3u) {
    return q_u8(byte) | (q_u8(byte + 1u) << 8u);
  }
  return (wload(byte >> 2u) >> ((byte & 3u) * 8u)) & 0xffffu;
}

// Byte k (0..3) of `word`, unsigned.
fn q_byte_of(word: u32, k: u32) -> u32 {
  return (word >> (8u * k)) & 0xffu;
}

// Byte k (0..3) of `word`, sign-extended as an int8.
fn q_i8_of(word: u32, k: u32) -> i32 {
  return bitcast<i32>(word << (24u - 8u * k)) >> 24u;
}

// The eight bytes starting at byte `byte` (any alignment), as two words:
// byte i of the eight is q_byte_of(words[i / 4], i % 4).
fn q_u32x2(byte: u32) -> vec2<u32> {
  return vec2<u32>(q_u32(byte), q_u32(byte + 4u));
}

// IEEE binary16 bits (low 16 bits of `bits`) to f32, exactly.
fn q_half(bits: u32) -> f32 {
  let sign = (bits & 0x8000u) << 16u;
  let exponent = (bits >> 10u) & 0x1fu;
  let mantissa = bits & 0x3ffu;
  if (exponent == 0u) {
    // Subnormal or zero: mantissa * 2^-24, a normal f32 (or zero).
    let magnitude = f32(mantissa) * 5.9604644775390625e-8;
    return select(magnitude, -magnitude, sign != 0u);
  }
  if (exponent == 31u) {
    return bitcast<f32>(sign | 0x7f800000u | (mantissa << 13u));
  }
  return bitcast<f32>(sign | ((exponent + 112u) << 23u) | (mantissa << 13u));
}

// The f16 stored at byte `byte` (any alignment).
fn q_half_at(byte: u32) -> f32 {
  return q_half(q_u16(byte));
}

// bfloat16 bits (low 16 bits of `bits`) to f32: the top half of an f32.
fn q_bf16(bits: u32) -> f32 {
  return bitcast<f32>((bits & 0xffffu) << 16u);
}

// An E8M0 byte to HALF its value, 2^(e - 128), as MXFP4 decoding uses it.
// e = 0 and 1 give f32 subnormals (2^-128, 2^-127), built from their bits.
fn q_e8m0_half(e: u32) -> f32 {
  if (e < 2u) {
    return bitcast<f32>(0x00200000u << e);
  }
  return bitcast<f32>((e - 1u) << 23u);
}
