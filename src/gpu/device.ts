/**
 * Device acquisition: one adapter and one device with the limits this runtime
 * needs (not WebGPU's small defaults), the optional features that are there,
 * and a plain description of the adapter for logs and bug reports.
 */

import { GpuOperationError, GpuUnavailableError } from './errors';

/** Limits asked at the adapter's maximum: weights and activations are large. */
export const REQUESTED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxStorageBuffersPerShaderStage',
] as const;

export type RequestedLimitName = (typeof REQUESTED_LIMITS)[number];

/** Features the kernels can use when present; none is required. */
export const USEFUL_FEATURES: readonly GPUFeatureName[] = ['shader-f16', 'subgroups', 'timestamp-query'];

export interface GpuDeviceOptions {
  /** The WebGPU entry point; defaults to `navigator.gpu` (in Node pass `await nodeGpu()`). */
  gpu?: GPU;
  powerPreference?: GPUPowerPreference;
  /** Features without which the caller cannot work: a missing one is an error. */
  requiredFeatures?: GPUFeatureName[];
  /** Features taken when the adapter has them and silently skipped otherwise. */
  wantFeatures?: GPUFeatureName[];
  /** Label of the device, shown in GPU error messages. */
  label?: string;
}

/** The adapter's identity as plain data (GPUAdapterInfo's fields are getters). */
export interface GpuAdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for software adapters such as SwiftShader or lavapipe. */
  isFallbackAdapter: boolean;
  /** Present when the adapter supports subgroups. */
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
}

export interface GpuContext {
  readonly adapter: GPUAdapter;
  readonly device: GPUDevice;
  readonly adapterInfo: GpuAdapterSummary;
  /** Features granted to the device (a subset of the adapter's). */
  readonly features: ReadonlySet<GPUFeatureName>;
  /** The device's limits, which include the raised ones in REQUESTED_LIMITS. */
  readonly limits: GPUSupportedLimits;
}

/**
 * Requests an adapter and a device with the adapter's maximum for every limit in
 * REQUESTED_LIMITS, the required features and whichever wanted features exist.
 * Throws GpuUnavailableError when there is no WebGPU, no adapter, a required
 * feature is missing, or the device request fails.
 */
export async function requestGpuDevice(options: GpuDeviceOptions = {}): Promise<GpuContext> {
  const gpu = options.gpu ?? navigatorGpu();
  if (!gpu) {
    throw new GpuUnavailableError(
      'NO_WEBGPU',
      'WebGPU is not available: navigator.gpu is missing. In a browser, use one with WebGPU enabled ' +
        'on a secure origin (https or localhost); in Node, pass { gpu: await nodeGpu() }.',
    );
  }
  const adapter = await gpu.requestAdapter(
    options.powerPreference ? { powerPreference: options.powerPreference } : undefined,
  );
  if (!adapter) {
    throw new GpuUnavailableError(
      'NO_WEBGPU',
      'WebGPU returned no adapter. The GPU may be blocklisted or its driver missing; ' +
        'Chromium without a GPU needs --enable-unsafe-webgpu, Node needs a Vulkan driver (Mesa >= 25).',
    );
  }
  const features = chooseFeatures(adapter.features, options.requiredFeatures ?? [], options.wantFeatures ?? []);
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({
      label: options.label ?? 'webmoe',
      requiredFeatures: features,
      requiredLimits: maxRequestedLimits(adapter.limits),
    });
  } catch (cause) {
    throw new GpuUnavailableError('DEVICE_REQUEST_FAILED', `The adapter refused to create a device: ${String(cause)}`, {
      cause,
    });
  }
  return {
    adapter,
    device,
    adapterInfo: summarizeAdapter(adapter),
    features: new Set([...device.features] as GPUFeatureName[]),
    limits: device.limits,
  };
}

function navigatorGpu(): GPU | undefined {
  // Node 20 has no global navigator; Node 21+ has one without gpu.
  return typeof navigator === 'undefined' ? undefined : navigator.gpu;
}

/** Required features (all must exist) plus the wanted ones the adapter has, without duplicates. */
export function chooseFeatures(
  available: ReadonlySetLike<string>,
  required: readonly GPUFeatureName[],
  wanted: readonly GPUFeatureName[],
): GPUFeatureName[] {
  const missing = required.filter((f) => !available.has(f));
  if (missing.length > 0) {
    throw new GpuUnavailableError(
      'MISSING_FEATURE',
      `The GPU adapter lacks required feature(s): ${missing.join(', ')}.`,
    );
  }
  return [...new Set([...required, ...wanted.filter((f) => available.has(f))])];
}

interface ReadonlySetLike<T> {
  has(value: T): boolean;
}

/** The adapter's value for each limit in REQUESTED_LIMITS. */
export function maxRequestedLimits(adapterLimits: GPUSupportedLimits): Record<RequestedLimitName, number> {
  const limits = {} as Record<RequestedLimitName, number>;
  for (const name of REQUESTED_LIMITS) limits[name] = adapterLimits[name];
  return limits;
}

export function summarizeAdapter(adapter: GPUAdapter): GpuAdapterSummary {
  // Older implementations expose isFallbackAdapter on the adapter rather than on its info.
  const legacy = adapter as GPUAdapter & { isFallbackAdapter?: boolean };
  const info = adapter.info as GPUAdapterInfo | undefined;
  const summary: GpuAdapterSummary = {
    vendor: info?.vendor ?? '',
    architecture: info?.architecture ?? '',
    device: info?.device ?? '',
    description: info?.description ?? '',
    isFallbackAdapter: Boolean(info?.isFallbackAdapter ?? legacy.isFallbackAdapter),
  };
  if (info?.subgroupMinSize !== undefined) summary.subgroupMinSize = info.subgroupMinSize;
  if (info?.subgroupMaxSize !== undefined) summary.subgroupMaxSize = info.subgroupMaxSize;
  return summary;
}

/** A few lines naming the adapter, its features, the granted ones and the raised limits. */
export function describeGpu(context: GpuContext): string {
  const i = context.adapterInfo;
  const subgroups = i.subgroupMinSize === undefined ? '' : `, subgroups ${i.subgroupMinSize}..${i.subgroupMaxSize}`;
  const limits = REQUESTED_LIMITS.map((name) => `${name}=${context.limits[name]}`).join(', ');
  return [
    `adapter: vendor "${i.vendor}", architecture "${i.architecture}", device "${i.device}", ` +
      `description "${i.description}", fallback ${i.isFallbackAdapter}${subgroups}`,
    `adapter features: ${[...context.adapter.features].sort().join(', ')}`,
    `device features: ${[...context.features].sort().join(', ') || '(none)'}`,
    `device limits: ${limits}`,
  ].join('\n');
}

/**
 * Runs `work` inside validation and out-of-memory error scopes and throws a
 * GpuOperationError naming `operation` if the GPU reported one. WebGPU reports
 * such errors asynchronously and otherwise only to the console.
 */
export async function withGpuErrorScope<T>(device: GPUDevice, operation: string, work: () => T): Promise<T> {
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let outcome: { ok: true; value: T } | { ok: false; thrown: unknown };
  try {
    outcome = { ok: true, value: work() };
  } catch (thrown) {
    outcome = { ok: false, thrown };
  }
  // Scopes must be popped even when work threw, or later errors land in them.
  const validation = await device.popErrorScope();
  const outOfMemory = await device.popErrorScope();
  const gpuError = validation ?? outOfMemory;
  // A GPU error usually explains a JS exception thrown by the same work, so it wins.
  if (gpuError) throw new GpuOperationError(operation, gpuError.message);
  if (!outcome.ok) throw outcome.thrown;
  return outcome.value;
}
