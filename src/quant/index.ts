/**
 * Public API of the quant layer: GGML block formats, small-float conversions,
 * CPU reference dequantisation and seeded random block data.
 */

export * from './formats';
export * from './half';
export * from './dequant';
export * from './random';
