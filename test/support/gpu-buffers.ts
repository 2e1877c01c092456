/**
 * Counts a device's live GPU buffers (created and not yet destroyed) by
 * wrapping its createBuffer, for tests that check nothing is left behind.
 */
import { nodePlatform } from '../../src/api/node';
import type { Platform } from '../../src/engine/service';

export interface DeviceBuffers {
  device: GPUDevice;
  live: Set<GPUBuffer>;
  created: number;
}

export function countBuffers(device: GPUDevice): DeviceBuffers {
  const counted: DeviceBuffers = { device, live: new Set(), created: 0 };
  const create = device.createBuffer.bind(device);
  device.createBuffer = (descriptor: GPUBufferDescriptor) => {
    const buffer = create(descriptor);
    counted.created++;
    counted.live.add(buffer);
    const destroy = buffer.destroy.bind(buffer);
    buffer.destroy = () => {
      counted.live.delete(buffer);
      destroy();
    };
    return buffer;
  };
  return counted;
}

/** The Node platform, with each device it creates counted into `devices`. */
export function countingPlatform(devices: DeviceBuffers[]): Platform {
  return {
    ...nodePlatform,
    requestGpu: async () => {
      const gpu = await nodePlatform.requestGpu();
      devices.push(countBuffers(gpu.device));
      return gpu;
    },
  };
}
