/**
 * webmoe for Node (`webmoe/node`): everything the browser entry exports,
 * with `createEngine` running the model in this thread on Dawn (the
 * `webgpu` package) and the filesystem model store. Browser bundles import
 * 'webmoe' and never see node:* modules.
 */
export * from './index';
export { createEngine, nodePlatform, openModelStore } from './api/node';
export { nodeGpu, installNavigatorGpu } from './gpu/node';
export { openFsWeightStore } from './store/fs-node';
export { defaultStoreDir } from './engine/node';
