/**
 * What a person can do about each failure: one sentence per error code,
 * shown under the error itself in the page's alert area.
 */
import type { WebMoeError, WebMoeErrorCode } from '../src/index';
import { toWebMoeError } from './api';
import { byId, element, formatBytes } from './view';

const ADVICE: Record<WebMoeErrorCode, (e: WebMoeError) => string> = {
  BAD_GGUF: () => 'This file is not a readable GGUF model (or it is cut short): download it again, or choose another .gguf file.',
  UNSUPPORTED_ARCH: (e) =>
    `This model's architecture${typeof e.details.architecture === 'string' ? ` (${e.details.architecture})` : ''} is not one webmoe runs: ` +
    'choose a Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE, Granite MoE, DeepSeek-V2 Lite or gpt-oss GGUF.',
  UNSUPPORTED_MODEL: () => 'Something in this model (a tensor type, the tokenizer or its layout) is not supported yet: try another quantization of the same model, such as Q8_0 or Q4_K_M.',
  QUOTA_EXCEEDED: (e) =>
    `The browser's storage is full${typeof e.details.neededBytes === 'number' ? ` (${formatBytes(e.details.neededBytes)} more needed)` : ''}: ` +
    'delete stored models below or free disk space, then import again: it resumes where it stopped.',
  MODEL_NOT_FOUND: () => 'That model is not in the store (or its import did not finish): import it again, which resumes an unfinished import.',
  MODEL_EXISTS: () => 'Another model is stored under that name: delete it first, or import this file under another name.',
  STORAGE_FAILED: () => 'The browser storage failed or a stored record is damaged: delete the model and import it again.',
  NO_WEBGPU: () =>
    'This browser offers no usable WebGPU: use a recent Chrome or Edge, or enable WebGPU in your browser settings; models can still be imported and kept for later.',
  DEVICE_LOST: () => 'The GPU was reset (a driver update, sleep, or too much memory in use): send again and the model reloads by itself; if it repeats, lower the expert budget.',
  GPU_ERROR: () => 'The GPU refused the work, often for lack of memory: lower the expert budget, close other GPU-heavy tabs, and load again.',
  EXPERT_BUDGET: (e) =>
    typeof e.details.minimumBytes === 'number'
      ? `The expert budget is too small for one token: give at least ${(e.details.minimumBytes / 2 ** 20).toFixed(2)} MB, or leave it empty to keep every expert on the GPU.`
      : 'The expert budget does not fit this device: change it, or leave it empty to keep every expert on the GPU.',
  ABORTED: () => 'The request was stopped.',
  BAD_REQUEST: () => 'A setting is out of range: check temperature (0 to 2), top-p (0 to 1) and max tokens (1 or more).',
  CONTEXT_OVERFLOW: () => 'The conversation no longer fits the model\'s context: start a New chat, or lower Max tokens.',
  NO_CHAT_TEMPLATE: () => 'This model has no chat template: switch the mode to Completion.',
  UNLOADED: () => 'The model was unloaded: load a model again.',
  INTERNAL: () => 'Something unexpected failed: reload the page and try again; if it repeats, report the message above.',
};

/** The advice sentence for an error. */
export function adviceFor(error: unknown): string {
  const e = toWebMoeError(error);
  return ADVICE[e.code](e);
}

/** Shows a failure (code, message, advice) in the page's alert area, or clears it. */
export function showError(error: unknown | undefined): void {
  const box = byId('error');
  if (error === undefined) {
    box.replaceChildren();
    box.hidden = true;
    delete box.dataset.code;
    return;
  }
  const e = toWebMoeError(error);
  box.dataset.code = e.code;
  const text = element('div', 'text');
  text.append(element('p', 'error-text', `${e.code}: ${e.message}`), element('p', 'advice', adviceFor(e)));
  box.replaceChildren(text, dismissButton());
  box.hidden = false;
}

/** Shows a plain instruction in the alert area (something to do first, not a failure with a code). */
export function showNotice(text: string): void {
  const box = byId('error');
  box.dataset.code = 'NOTICE';
  const body = element('div', 'text');
  body.append(element('p', 'advice', text));
  box.replaceChildren(body, dismissButton());
  box.hidden = false;
}

function dismissButton(): HTMLButtonElement {
  const button = element('button', 'dismiss', 'Dismiss');
  button.type = 'button';
  button.setAttribute('aria-label', 'Dismiss this message');
  button.addEventListener('click', () => showError(undefined));
  return button;
}
