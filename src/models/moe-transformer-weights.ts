/**
 * The weights of a MoE transformer on the GPU, read from a GGUF file:
 *
 * - every non-expert matrix in its own buffer, in its stored block format
 *   (the kernels dequantize as they read); 1-D tensors (norms, biases) as
 *   f32, biases repeated once per token of the largest batch so that one
 *   elementwise add covers a whole batch;
 * - every routed expert of every layer (and each layer's shared expert, or a
 *   dense FFN, as an expert of its own) packed into a fixed-size slot of a
 *   slab buffer (src/kernels/expert-slots.ts). Slots are placed layer by
 *   layer, so each layer's experts lie in a short run of slabs: the layer's
 *   FFN binds that run, and its slot refs index into it.
 *
 * All experts are resident here; an expert cache would own the slabs and the
 * refs instead, and the forward pass would not change.
 */

import { readTensorData } from '../gguf/reader';
import type { ByteSource } from '../gguf/source';
import type { GgufFile, GgufTensorInfo } from '../gguf/types';
import { createStorageBuffer } from '../gpu/buffers';
import { expertSlotLayout, packExpertSlot, slotsPerSlab } from '../kernels/expert-slots';
import type { ExpertSlotLayout, ExpertSlotRef, ExpertTensors } from '../kernels/expert-slots';
import { dequantize } from '../quant/dequant';
import { GgmlType, ggmlTypeName } from '../quant/formats';
import type { DenseFfnTensors, ModelConfig, MoeFfnTensors } from './config';
import { ModelConfigError } from './config';

/** A matrix [rows][cols] as GGUF stores it, in its block format. */
export interface GpuMatrix {
  buffer: GPUBuffer;
  type: GgmlType;
  rows: number;
  cols: number;
}

/**
 * Experts of one layer in slab slots: `slabs` is the list the layer's FFN
 * binds (exactly `slabCount` of its kernel), refs[e] the slot of expert e.
 */
export interface LayerExperts {
  layout: ExpertSlotLayout;
  slabs: GPUBuffer[];
  refs: ExpertSlotRef[];
}

export interface GpuLayerWeights {
  attnNorm: GPUBuffer; // f32 (hidden)
  q: GpuMatrix; // (nHead * headDim, hidden)
  k: GpuMatrix; // (nHeadKv * headDim, hidden)
  v: GpuMatrix; // (nHeadKv * headDim, hidden)
  qBias?: GPUBuffer; // f32 (maxBatch, nHead * headDim): the bias once per token
  kBias?: GPUBuffer; // f32 (maxBatch, nHeadKv * headDim)
  vBias?: GPUBuffer; // f32 (maxBatch, nHeadKv * headDim)
  qNorm?: GPUBuffer; // f32 (headDim) per head, or (nHead * headDim) whole
  kNorm?: GPUBuffer; // f32 (headDim) per head, or (nHeadKv * headDim) whole
  attnOut: GpuMatrix; // (hidden, nHead * headDim)
  attnOutBias?: GPUBuffer; // f32 (maxBatch, hidden)
  attnSinks?: GPUBuffer; // f32 (nHead)
  ffnNorm: GPUBuffer; // f32 (hidden)
  /** Router (MoE layers only): (nExpert, hidden). */
  router?: GpuMatrix;
  /** Router logit bias (nExpert), f32 (gpt-oss). */
  routerBias?: GPUBuffer;
  /** Shared-expert gate vector (hidden), f32. */
  sharedGate?: GPUBuffer;
  /** Routed experts (MoE layers). */
  experts?: LayerExperts;
  /** The shared expert (qwen2moe) or the dense FFN of a dense layer, as one expert. */
  single?: LayerExperts;
}

export interface GpuModelWeights {
  tokenEmbd: GpuMatrix; // (vocab, hidden)
  outputNorm: GPUBuffer; // f32 (hidden)
  output: GpuMatrix; // (vocab, hidden); the same buffer as tokenEmbd when tied
  ropeFreqs?: GPUBuffer; // f32 (headDim / 2)
  layers: GpuLayerWeights[];
  /** Every buffer made here, to destroy. */
  buffers: GPUBuffer[];
  /** Bytes of expert slabs. */
  expertBytes: number;
}

export interface WeightUploadOptions {
  /** Tokens of the largest batch (biases are repeated this often). */
  maxBatchTokens: number;
  /** Largest slab; default min(128 MiB, the device's binding and buffer limits). */
  maxSlabBytes?: number;
  /** Most slabs one FFN dispatch may bind. */
  maxSlabBindings: number;
  /**
   * Leave routed experts out (an expert cache streams them in): their layers
   * get `experts` with the slot layout and no slabs or refs yet.
   */
  skipRoutedExperts?: boolean;
}

const DEFAULT_MAX_SLAB_BYTES = 128 * 1024 * 1024;

/** Reads every tensor of the config's table from `source` and uploads it. */
export async function uploadWeights(
  device: GPUDevice,
  file: GgufFile,
  source: ByteSource,
  config: ModelConfig,
  options: WeightUploadOptions,
): Promise<GpuModelWeights> {
  const infos = new Map(file.tensors.map((t) => [t.name, t]));
  const info = (name: string): GgufTensorInfo => {
    const t = infos.get(name);
    if (!t) throw new ModelConfigError('MISSING_TENSOR', `tensor ${name} is missing`);
    return t;
  };
  const buffers: GPUBuffer[] = [];
  const keep = (buffer: GPUBuffer): GPUBuffer => (buffers.push(buffer), buffer);
  const cachedMatrices = new Map<string, GpuMatrix>();

  const matrix = async (name: string): Promise<GpuMatrix> => {
    const cached = cachedMatrices.get(name);
    if (cached) return cached;
    const t = info(name);
    const bytes = await readTensorData(source, file, t);
    const m = { buffer: keep(createStorageBuffer(device, bytes, name)), type: t.type as GgmlType, cols: t.dims[0], rows: t.nElements / t.dims[0] };
    cachedMatrices.set(name, m);
    return m;
  };
  const vector = async (name: string, repeat = 1): Promise<GPUBuffer> => {
    const values = await readF32(source, file, info(name));
    const tiled = new Float32Array(values.length * repeat);
    for (let r = 0; r < repeat; r++) tiled.set(values, r * values.length);
    return keep(createStorageBuffer(device, tiled, name));
  };
  const optVector = async (name: string | undefined, repeat = 1): Promise<GPUBuffer | undefined> =>
    name === undefined ? undefined : vector(name, repeat);

  const t = config.tensors;
  const batch = options.maxBatchTokens;
  const layers: GpuLayerWeights[] = [];
  for (const l of t.layers) {
    layers.push({
      attnNorm: await vector(l.attnNorm),
      q: await matrix(l.q),
      k: await matrix(l.k),
      v: await matrix(l.v),
      qBias: await optVector(l.qBias, batch),
      kBias: await optVector(l.kBias, batch),
      vBias: await optVector(l.vBias, batch),
      qNorm: await optVector(l.qNorm),
      kNorm: await optVector(l.kNorm),
      attnOut: await matrix(l.attnOut),
      attnOutBias: await optVector(l.attnOutBias, batch),
      attnSinks: await optVector(l.attnSinks),
      ffnNorm: await vector(l.ffnNorm),
      router: l.ffn.kind === 'moe' ? await matrix(l.ffn.router) : undefined,
      routerBias: l.ffn.kind === 'moe' ? await optVector(l.ffn.routerBias) : undefined,
      sharedGate: l.ffn.kind === 'moe' ? await optVector(l.ffn.shared?.gateInp) : undefined,
    });
  }

  const slabLimit = Math.min(
    options.maxSlabBytes ?? DEFAULT_MAX_SLAB_BYTES,
    device.limits.maxStorageBufferBindingSize,
    device.limits.maxBufferSize,
  );
  const sources = t.layers.map((l) => {
    const ffn = l.ffn;
    if (ffn.kind === 'dense') return { single: singleExpert(file, source, config.hidden, ffn, info) };
    return {
      experts: routedExperts(file, source, config, ffn, info),
      single: ffn.shared && singleExpert(file, source, config.hidden, ffn.shared, info),
    };
  });
  const slotsByKey = new Map<string, number>();
  for (const s of sources.flatMap((l) => [options.skipRoutedExperts ? undefined : l.experts, l.single])) {
    if (s) slotsByKey.set(layoutKey(s.layout), (slotsByKey.get(layoutKey(s.layout)) ?? 0) + s.count);
  }
  const placer = new SlabPlacer(device, slabLimit, options.maxSlabBindings, keep, slotsByKey);
  for (const [i, s] of sources.entries()) {
    if (s.experts && options.skipRoutedExperts) layers[i].experts = { layout: s.experts.layout, slabs: [], refs: [] };
    else if (s.experts) layers[i].experts = await placer.place(s.experts);
    if (s.single) layers[i].single = await placer.place(s.single);
  }
  placer.finish(layers);

  const tokenEmbd = await matrix(t.tokenEmbd);
  return {
    tokenEmbd,
    outputNorm: await vector(t.outputNorm),
    output: await matrix(t.output),
    ropeFreqs: await optVector(t.ropeFreqs),
    layers,
    buffers,
    expertBytes: placer.totalBytes,
  };
}

/** A 1-D tensor as f32, dequantized when stored otherwise. */
async function readF32(source: ByteSource, file: GgufFile, t: GgufTensorInfo): Promise<Float32Array> {
  const bytes = await readTensorData(source, file, t);
  return dequantize(t.type as GgmlType, bytes, t.nElements);
}

/** The experts of one layer, each read from the file when placed. */
interface ExpertSource {
  layout: ExpertSlotLayout;
  count: number;
  read(expert: number): Promise<ExpertTensors>;
}

function routedExperts(
  file: GgufFile,
  source: ByteSource,
  config: ModelConfig,
  ffn: MoeFfnTensors,
  info: (name: string) => GgufTensorInfo,
): ExpertSource {
  const [gate, up, down] = [info(ffn.gateExps), info(ffn.upExps), info(ffn.downExps)];
  const layout = slotLayout(config.hidden, config.expertFF, gate, up, down, ffn.expertBiases !== undefined);
  // Expert e of a [cols, rows, experts] tensor is its e-th run of rows * cols elements.
  const slice = (t: GgufTensorInfo, e: number): Promise<Uint8Array> => {
    const perExpert = t.nBytes / config.nExpert;
    return source.read(file.dataOffset + t.offset + e * perExpert, perExpert);
  };
  // Biases [n, experts] as f32, read once: expert e's is the e-th run of n.
  const biasNames = ffn.expertBiases;
  let biases: Promise<{ gate: Float32Array; up: Float32Array; down: Float32Array }> | undefined;
  const biasesOf = async (e: number) => {
    if (!biasNames) return {};
    biases ??= (async () => ({
      gate: await readF32(source, file, info(biasNames.gate)),
      up: await readF32(source, file, info(biasNames.up)),
      down: await readF32(source, file, info(biasNames.down)),
    }))();
    const b = await biases;
    const F = config.expertFF;
    const H = config.hidden;
    return { gateBias: b.gate.slice(e * F, (e + 1) * F), upBias: b.up.slice(e * F, (e + 1) * F), downBias: b.down.slice(e * H, (e + 1) * H) };
  };
  return {
    layout,
    count: config.nExpert,
    read: async (e) => ({ gate: await slice(gate, e), up: await slice(up, e), down: await slice(down, e), ...(await biasesOf(e)) }),
  };
}

function singleExpert(
  file: GgufFile,
  source: ByteSource,
  hidden: number,
  ffn: Pick<DenseFfnTensors, 'gate' | 'up' | 'down'>,
  info: (name: string) => GgufTensorInfo,
): ExpertSource {
  const [gate, up, down] = [info(ffn.gate), info(ffn.up), info(ffn.down)];
  const layout = slotLayout(hidden, gate.nElements / hidden, gate, up, down);
  return {
    layout,
    count: 1,
    read: async () => ({
      gate: await readTensorData(source, file, gate),
      up: await readTensorData(source, file, up),
      down: await readTensorData(source, file, down),
    }),
  };
}

function slotLayout(hidden: number, ffn: number, gate: GgufTensorInfo, up: GgufTensorInfo, down: GgufTensorInfo, hasBiases = false): ExpertSlotLayout {
  if (gate.type !== up.type) {
    throw new ModelConfigError(
      'BAD_CONFIG',
      `${gate.name} (${ggmlTypeName(gate.type)}) and ${up.name} (${ggmlTypeName(up.type)}) must share a block format`,
    );
  }
  return expertSlotLayout({ hidden, ffn, gateUpType: gate.type as GgmlType, downType: down.type as GgmlType, hasBiases });
}

/** A key per slot layout: layers with equal keys share slabs and FFN pipelines. */
export function layoutKey(layout: ExpertSlotLayout): string {
  return `${layout.hidden}x${layout.ffn}:${layout.gateUpType}/${layout.downType}:${layout.slotBytes}`;
}

interface SlabRun {
  layout: ExpertSlotLayout;
  /** Global slab indices of this run's slabs, in order. */
  slabs: number[];
  refs: ExpertSlotRef[];
}

/**
 * Places slots layer after layer, filling slabs of each layout in turn. A
 * layer's slabs are consecutive; `finish` pads every layer's list to the
 * longest list of its layout (by repeating its last slab), since all layers
 * of a layout share one FFN pipeline with a fixed slab count.
 */
class SlabPlacer {
  private readonly slabs: GPUBuffer[] = [];
  /** Per layout key: the slab being filled and how many slots it holds. */
  private readonly open = new Map<string, { slab: number; used: number; capacity: number }>();
  private readonly runs = new Map<LayerExperts, SlabRun>();
  totalBytes = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly slabLimitBytes: number,
    private readonly maxSlabBindings: number,
    private readonly keep: (b: GPUBuffer) => GPUBuffer,
    /** Slots each layout still needs: a slab is never made larger than that. */
    private readonly remainingByKey: Map<string, number>,
  ) {}

  async place(experts: ExpertSource): Promise<LayerExperts> {
    const { layout } = experts;
    const key = layoutKey(layout);
    const perSlab = slotsPerSlab(layout, this.slabLimitBytes);
    if (perSlab < 1) {
      throw new ModelConfigError('BAD_CONFIG', `an expert slot of ${layout.slotBytes} bytes exceeds the ${this.slabLimitBytes}-byte slab limit`);
    }
    const run: SlabRun = { layout, slabs: [], refs: [] };
    for (let e = 0; e < experts.count; e++) {
      let open = this.open.get(key);
      if (!open || open.used === open.capacity) {
        // Size the new slab for what this layout may still need, at most the limit.
        const capacity = Math.min(perSlab, this.remainingByKey.get(key) ?? perSlab);
        const bytes = Math.max(1, capacity) * layout.slotBytes;
        this.slabs.push(this.keep(this.device.createBuffer({
          label: `expert slab ${this.slabs.length}`,
          size: bytes,
          usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
        })));
        this.totalBytes += bytes;
        open = { slab: this.slabs.length - 1, used: 0, capacity: Math.max(1, capacity) };
        this.open.set(key, open);
      }
      if (run.slabs[run.slabs.length - 1] !== open.slab) run.slabs.push(open.slab);
      const offsetBytes = open.used * layout.slotBytes;
      this.device.queue.writeBuffer(this.slabs[open.slab], offsetBytes, packExpertSlot(layout, await experts.read(e)));
      run.refs.push({ slab: run.slabs.length - 1, offsetBytes });
      open.used++;
      this.remainingByKey.set(key, (this.remainingByKey.get(key) ?? 1) - 1);
    }
    if (run.slabs.length > this.maxSlabBindings) {
      throw new ModelConfigError('BAD_CONFIG', `one layer's experts span ${run.slabs.length} slabs; at most ${this.maxSlabBindings} can be bound`);
    }
    const placed: LayerExperts = { layout, slabs: [], refs: run.refs };
    this.runs.set(placed, run);
    return placed;
  }

  /** Fills in each placed layer's slab list, padded to its layout's longest run. */
  finish(layers: GpuLayerWeights[]): void {
    const longest = new Map<string, number>();
    for (const run of this.runs.values()) {
      const key = layoutKey(run.layout);
      longest.set(key, Math.max(longest.get(key) ?? 0, run.slabs.length));
    }
    for (const layer of layers) {
      for (const placed of [layer.experts, layer.single]) {
        if (!placed || !this.runs.has(placed)) continue;
        const run = this.runs.get(placed)!;
        const count = longest.get(layoutKey(run.layout))!;
        placed.slabs = Array.from({ length: count }, (_, i) => this.slabs[run.slabs[Math.min(i, run.slabs.length - 1)]]);
      }
    }
  }
}


/** The slot layout of each layer's routed experts (undefined for a dense layer), read from the tensor table only. */
export function routedExpertLayouts(file: GgufFile, config: ModelConfig): (ExpertSlotLayout | undefined)[] {
  const infos = new Map(file.tensors.map((t) => [t.name, t]));
  const info = (name: string): GgufTensorInfo => {
    const t = infos.get(name);
    if (!t) throw new ModelConfigError('MISSING_TENSOR', `tensor ${name} is missing`);
    return t;
  };
  return config.tensors.layers.map((l) =>
    l.ffn.kind === 'moe'
      ? slotLayout(config.hidden, config.expertFF, info(l.ffn.gateExps), info(l.ffn.upExps), info(l.ffn.downExps), l.ffn.expertBiases !== undefined)
      : undefined,
  );
}
