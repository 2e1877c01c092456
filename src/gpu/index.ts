/**
 * The GPU layer: device acquisition, buffers, dispatch geometry, WGSL
 * preprocessing and the pipeline cache. The Node-only entry (`./node`, which
 * loads Dawn) is deliberately not re-exported so browser bundles never see it.
 */

export * from './buffers';
export * from './device';
export * from './dispatch';
export * from './errors';
export * from './pipelines';
export * from './shader';
export * from './timing';
