/**
 * The chat panel: the conversation, streamed into the assistant's bubble
 * chunk by chunk; Stop aborts the request through its AbortSignal; the last
 * chunk's usage is shown under the conversation.
 */
import { toWebMoeError, type ChatCompletionMessageParam, type WebMoeEngine } from '../src/index';
import { byId, element, formatUsage, showError } from './view';

export class ChatPanel {
  private engine: WebMoeEngine | undefined;
  private messages: ChatCompletionMessageParam[] = [];
  private controller: AbortController | undefined;
  private readonly list = byId('messages');
  private readonly prompt = byId<HTMLTextAreaElement>('prompt');
  private readonly send = byId<HTMLButtonElement>('send');
  private readonly stop = byId<HTMLButtonElement>('stop');
  private readonly usage = byId('usage');

  constructor() {
    byId('composer').addEventListener('submit', (event) => {
      event.preventDefault();
      void this.ask();
    });
    this.prompt.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey) {
        event.preventDefault();
        void this.ask();
      }
    });
    this.stop.addEventListener('click', () => this.controller?.abort());
    byId('clear').addEventListener('click', () => this.reset());
  }

  /** A new engine (or none): the conversation starts over. */
  attach(engine: WebMoeEngine | undefined): void {
    this.engine = engine;
    this.reset();
  }

  /** Stops what is running and starts an empty conversation. */
  private reset(): void {
    this.controller?.abort();
    this.controller = undefined;
    this.messages = [];
    this.list.replaceChildren();
    this.usage.textContent = '';
    this.update();
  }

  private update(): void {
    const running = this.controller !== undefined;
    this.send.disabled = !this.engine || running;
    this.stop.disabled = !running;
  }

  private bubble(role: 'user' | 'assistant', text: string): HTMLElement {
    const el = element('div', `message ${role}`, text);
    this.list.append(el);
    el.scrollIntoView({ block: 'end' });
    return el;
  }

  /** Sends the prompt box as the next user message and streams the reply. */
  private async ask(): Promise<void> {
    const engine = this.engine;
    const content = this.prompt.value.trim();
    if (!engine || this.controller || !content) return;
    this.prompt.value = '';
    showError(undefined);
    this.usage.textContent = 'Generating…';
    const messages = this.messages;
    messages.push({ role: 'user', content });
    this.bubble('user', content);
    const out = this.bubble('assistant', '');
    const controller = (this.controller = new AbortController());
    this.update();

    let reply = '';
    try {
      const stream = await engine.chat.completions.create({
        messages,
        stream: true,
        max_tokens: byId<HTMLInputElement>('max-tokens').valueAsNumber || undefined,
        temperature: byId<HTMLInputElement>('temperature').valueAsNumber || 0,
        signal: controller.signal,
      });
      let finishReason = '';
      for await (const chunk of stream) {
        const choice = chunk.choices[0];
        if (choice?.delta.content) {
          reply += choice.delta.content;
          out.textContent = reply;
          out.scrollIntoView({ block: 'end' });
        }
        if (choice?.finish_reason) finishReason = choice.finish_reason;
        if (chunk.usage) this.usage.textContent = formatUsage(chunk.usage, finishReason);
      }
      messages.push({ role: 'assistant', content: reply });
    } catch (error) {
      if (this.controller !== controller) return; // the conversation was reset
      if (toWebMoeError(error).code === 'ABORTED') {
        out.classList.add('stopped');
        this.usage.textContent = `Stopped after ${reply.length} characters.`;
        messages.push({ role: 'assistant', content: reply });
      } else {
        out.classList.add('failed');
        this.usage.textContent = '';
        messages.pop();
        showError(error);
      }
    } finally {
      if (this.controller === controller) {
        this.controller = undefined;
        this.update();
      }
    }
  }
}
