/**
 * The conversation: kept in localStorage, shown as chat bubbles (chat mode)
 * or as one document the model continues (completion mode, for completion
 * models such as the built-in one). A reply streams in chunk by chunk with
 * its routing, which feeds the heatmap and the live figures; Stop aborts it
 * through its AbortSignal. Model text is only ever set as textContent.
 */
import type { ChatCompletionMessageParam, CompletionUsage, MoeRoutingDelta, SamplingParams, WebMoeEngine } from '../src/index';
import { toWebMoeError } from './api';
import { showError } from './advice';
import type { Figures } from './figures';
import type { Heatmap } from './heatmap';
import { save, state, type Mode, type StoredMessage } from './persist';
import { RoutingTally, type EngineMemory, type RoutingShape } from './routing';
import type { SettingsPanel } from './settings';
import { byId, element } from './view';

/** A loaded model as the chat uses it. */
export interface ChatModel {
  engine: WebMoeEngine;
  id: string;
  shape: RoutingShape | undefined;
  /** Per MoE layer, resident expert ids (from stats(), then from each reply). */
  resident: number[][] | undefined;
}

/** One streamed piece, the same for chat and completion chunks. */
interface Piece {
  text: string;
  routing?: MoeRoutingDelta;
  usage?: CompletionUsage;
  finish?: string;
}

const PLACEHOLDER: Record<Mode, string> = {
  completion: 'Text for the model to continue, e.g. "To read a file, use"',
  chat: 'Message (Enter sends, Shift+Enter adds a line)',
};

export class ChatPanel {
  private model: ChatModel | undefined;
  private controller: AbortController | undefined;
  private readonly list = byId('messages');
  private readonly prompt = byId<HTMLTextAreaElement>('prompt');
  private readonly send = byId<HTMLButtonElement>('send');
  private readonly stop = byId<HTMLButtonElement>('stop');
  private readonly status = byId('chat-status');

  constructor(private readonly settings: SettingsPanel, private readonly heatmap: Heatmap, private readonly figures: Figures) {
    byId('composer').addEventListener('submit', (event) => {
      event.preventDefault();
      void this.ask();
    });
    this.prompt.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        void this.ask();
      }
    });
    this.stop.addEventListener('click', () => this.controller?.abort());
    byId('new-chat').addEventListener('click', () => this.newChat());
    settings.onModeChange(() => this.render());
    this.render();
    this.update();
  }

  /** The model to talk to (undefined while none is loaded); the conversation stays. */
  attach(model: ChatModel | undefined): void {
    this.controller?.abort();
    this.controller = undefined;
    this.model = model;
    this.status.textContent = model ? `Talking to ${model.id}.` : 'Load a model to start.';
    this.update();
  }

  private newChat(): void {
    this.controller?.abort();
    this.controller = undefined;
    state.messages = [];
    save();
    this.render();
    this.update();
    this.prompt.focus();
  }

  private update(): void {
    const running = this.controller !== undefined;
    this.send.disabled = !this.model || running;
    this.stop.disabled = !running;
    this.prompt.placeholder = PLACEHOLDER[this.settings.settings.mode];
  }

  /** Redraws the conversation from the stored messages. */
  private render(): void {
    const mode = this.settings.settings.mode;
    this.list.dataset.mode = mode;
    this.list.replaceChildren(...state.messages.map((m) => this.bubble(m)));
    if (state.messages.length === 0) {
      this.list.append(element('p', 'muted empty', mode === 'completion' ? 'Write the start of a text; the model continues it.' : 'Say something to start.'));
    }
    this.scrollToEnd();
    this.update();
  }

  private bubble(m: StoredMessage): HTMLElement {
    const el = element('div', `message ${m.role}${m.stopped ? ' stopped' : ''}`, m.content);
    el.dataset.role = m.role;
    return el;
  }

  private append(m: StoredMessage): HTMLElement {
    this.list.querySelector('.empty')?.remove();
    const el = this.bubble(m);
    this.list.append(el);
    this.scrollToEnd();
    return el;
  }

  /** Keeps the end of the conversation in view (scrolling the list only, never the page). */
  private scrollToEnd(): void {
    this.list.scrollTop = this.list.scrollHeight;
  }

  /** Sends the prompt box as the next user turn (or text to continue) and streams the reply. */
  private async ask(): Promise<void> {
    const model = this.model;
    const mode = this.settings.settings.mode;
    // In completion mode the text is used as typed (spaces matter); an empty box continues the document.
    const text = mode === 'completion' ? this.prompt.value : this.prompt.value.trim();
    if (!model || this.controller || (!text && (mode === 'chat' || state.messages.length === 0))) return;
    this.prompt.value = '';
    showError(undefined);
    if (text) {
      const user: StoredMessage = { role: 'user', content: text };
      state.messages.push(user);
      this.append(user);
    }
    const reply: StoredMessage = { role: 'assistant', content: '' };
    const history = [...state.messages];
    state.messages.push(reply);
    save();
    const out = this.append(reply);
    const controller = (this.controller = new AbortController());
    this.update();
    this.status.textContent = 'Generating…';
    this.list.setAttribute('aria-busy', 'true');

    const tally = model.shape ? new RoutingTally(model.shape, model.resident) : undefined;
    if (tally) this.heatmap.show(tally);
    this.heatmap.setBusy(true);
    this.figures.begin();
    let routingSeen = false;
    let finish = '';
    let lastSave = performance.now();
    try {
      for await (const piece of this.pieces(model.engine, mode, history, controller.signal)) {
        if (piece.routing && tally) {
          routingSeen = true;
          tally.add(piece.routing);
          this.figures.onRouting(piece.routing.tokens.length, tally);
          this.heatmap.schedule();
        }
        if (piece.text) {
          reply.content += piece.text;
          out.textContent = reply.content;
          this.scrollToEnd();
          this.figures.onText(routingSeen);
          if (performance.now() - lastSave > 1000) {
            save();
            lastSave = performance.now();
          }
        }
        if (piece.finish) finish = piece.finish;
        if (piece.usage) {
          this.figures.finish(piece.usage);
          this.status.textContent = `${piece.usage.completion_tokens} tokens generated (finish: ${finish || 'stop'}).`;
        }
      }
    } catch (error) {
      const current = this.controller === controller;
      if (current) this.figures.abandon();
      if (toWebMoeError(error).code === 'ABORTED') {
        reply.stopped = true;
        out.classList.add('stopped');
        if (current) this.status.textContent = `Stopped after ${reply.content.length} characters.`;
      } else if (current) {
        out.classList.add('failed');
        state.messages.splice(state.messages.indexOf(reply), 1);
        this.status.textContent = 'The reply failed.';
        showError(error);
      }
    } finally {
      save();
      this.list.setAttribute('aria-busy', 'false');
      if (this.controller === controller) {
        this.controller = undefined;
        this.update();
        await this.afterReply(model, tally);
      } else {
        // A new chat or another model took over: its state is not this reply's.
        this.heatmap.setBusy(false);
      }
    }
  }

  /** stats() after a reply: residency for the heatmap and the next tally, memory for the figures. */
  private async afterReply(model: ChatModel, tally: RoutingTally | undefined): Promise<void> {
    const memory: EngineMemory | null = (await model.engine.stats().catch(() => undefined))?.memory ?? null;
    if (memory) {
      model.resident = memory.resident_experts;
      tally?.setResident(memory.resident_experts);
    }
    this.figures.setMemory(memory);
    this.heatmap.setBusy(false);
    this.heatmap.flush();
  }

  /** The request's chunks as pieces: a chat completion (with the system prompt) or a completion of the transcript. */
  private async *pieces(engine: WebMoeEngine, mode: Mode, history: StoredMessage[], signal: AbortSignal): AsyncGenerator<Piece> {
    const s = this.settings.settings;
    const sampling: SamplingParams = {
      max_tokens: s.maxTokens,
      temperature: s.temperature,
      ...(s.topP < 1 ? { top_p: s.topP } : {}),
      signal,
      moe_routing: true,
    };
    if (mode === 'chat') {
      const messages: ChatCompletionMessageParam[] = [...(s.system.trim() ? [{ role: 'system' as const, content: s.system }] : []), ...history];
      for await (const c of await engine.chat.completions.create({ ...sampling, messages, stream: true })) {
        const choice = c.choices[0];
        yield { text: choice?.delta.content ?? '', routing: c.moe_routing, usage: c.usage, finish: choice?.finish_reason ?? undefined };
      }
      return;
    }
    for await (const c of await engine.completions.create({ ...sampling, prompt: history.map((m) => m.content).join(''), stream: true })) {
      const choice = c.choices[0];
      yield { text: choice?.text ?? '', routing: c.moe_routing, usage: c.usage, finish: choice?.finish_reason ?? undefined };
    }
  }
}
