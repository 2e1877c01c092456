/**
 * The decode-time shapes the kernel benchmark measures: two real MoE models'
 * hidden size, expert FFN size, expert count and top-k (from their GGUF
 * metadata), and a small variant for quick runs on software adapters.
 */

export interface MoeShape {
  name: string;
  /** Model width H. */
  hidden: number;
  /** Expert FFN width F. */
  expertFfn: number;
  /** Routed experts per layer E. */
  experts: number;
  topK: number;
  /** Whether the router divides the k weights by their sum. */
  normalizeRouting: boolean;
}

export const OLMOE_1B_7B: MoeShape = { name: 'OLMoE-1B-7B', hidden: 2048, expertFfn: 1024, experts: 64, topK: 8, normalizeRouting: false };
export const QWEN3_30B_A3B: MoeShape = { name: 'Qwen3-30B-A3B', hidden: 2048, expertFfn: 768, experts: 128, topK: 8, normalizeRouting: true };

/** K-quant rows hold whole 256-element blocks, so small widths are rounded up to that. */
const SMALL_WIDTH_MULTIPLE = 256;

/** `shape` with H and F divided by 4 (rounded up to whole K-quant blocks); experts and top-k as they are. */
export function smallShape(shape: MoeShape): MoeShape {
  const quarter = (width: number) => Math.ceil(width / 4 / SMALL_WIDTH_MULTIPLE) * SMALL_WIDTH_MULTIPLE;
  return { ...shape, name: `${shape.name} (small)`, hidden: quarter(shape.hidden), expertFfn: quarter(shape.expertFfn) };
}

export function benchModels(small: boolean): MoeShape[] {
  const models = [OLMOE_1B_7B, QWEN3_30B_A3B];
  return small ? models.map(smallShape) : models;
}
