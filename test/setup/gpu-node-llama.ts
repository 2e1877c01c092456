/**
 * Setup file of the gpu-node project: gives test/gpu/support/llama-cpp.ts
 * its Node side, loaded (with node-llama-cpp) only when a test asks for it.
 */

globalThis.webmoeLlamaCppReference = async (request) => (await import('./llama-cpp-reference')).computeLlamaCppReference(request);
