/** GPU kernels: one wrapper per WGSL file in shaders/. */

export * from './add';
export * from './argmax';
export * from './attention';
export * from './dequant';
export * from './embedding';
export * from './expert-ffn';
export * from './expert-slots';
export * from './kv-write';
export * from './matmul';
export * from './matvec';
export * from './quant-decoders';
export * from './rmsnorm';
export * from './rope';
export * from './router';
export * from './sample-topk';
export * from './sampling';
