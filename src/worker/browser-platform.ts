/** The engine's platform in a browser (or a worker): navigator.gpu and the IndexedDB model store. */
import { requestGpuDevice, USEFUL_FEATURES } from '../gpu/device';
import { openIndexedDbWeightStore } from '../store/idb';
import type { Platform } from '../engine/service';

export const browserPlatform: Platform = {
  requestGpu: () => requestGpuDevice({ wantFeatures: [...USEFUL_FEATURES], label: 'webmoe' }),
  openStore: async (options) => openIndexedDbWeightStore({ databaseName: options.databaseName }),
};
