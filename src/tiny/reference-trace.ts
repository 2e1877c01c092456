/**
 * The routing of a GGUF model on a token sequence, from the CPU reference
 * forward pass, as a RoutingTrace (MoE layers in order), so that the
 * statistics of src/experts/stats.ts measure generated models exactly as
 * they measure recorded traces of real ones.
 */

import type { RoutingTrace } from '../experts/trace';
import { loadReferenceModel } from '../ref/forward';

export async function referenceRoutingTrace(bytes: Uint8Array, tokens: readonly number[], name: string): Promise<RoutingTrace> {
  const model = await loadReferenceModel(bytes);
  const routes = model.evaluate(tokens).routes.filter((layer) => layer.length > 0);
  return {
    name,
    nLayers: routes.length,
    nExperts: model.config.nExpert,
    topK: model.config.nExpertUsed,
    tokens: tokens.map((_, t) => ({ experts: routes.map((layer) => [...layer[t].experts]), weights: routes.map((layer) => [...layer[t].weights]) })),
  };
}
