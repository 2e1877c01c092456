/**
 * Setup file of the gpu-node project, run in each test worker: gives Node what
 * a browser has (navigator.gpu backed by Dawn, and the GPU* constant globals),
 * so the same test files run unchanged in both GPU projects.
 */

import { installNavigatorGpu, nodeGpu } from '../../src/gpu/node';

installNavigatorGpu(await nodeGpu());
