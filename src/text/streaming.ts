/**
 * Incremental text output for generation: token ids in, text deltas out.
 *
 * StreamingDetokenizer turns ids into text one at a time without ever
 * emitting a broken character: a character split across tokens (byte-level
 * BPE pieces, <0xNN> byte tokens) is held back until its last byte arrives.
 *
 * StopMatcher cuts the text at the first user stop string, which may arrive
 * spread over several deltas: text is released only once it can no longer be
 * the start of a stop string, and nothing from the stop string on is released.
 */

import type { DecodeOptions, Tokenizer } from './tokenizer';

export class StreamingDetokenizer {
  // ignoreBOM: a U+FEFF the model writes is text, not a byte order mark.
  private readonly decoder = new TextDecoder('utf-8', { ignoreBOM: true });

  constructor(
    private readonly tokenizer: Tokenizer,
    private readonly options: Pick<DecodeOptions, 'skipSpecial'> = {},
  ) {}

  /** The text completed by this token: possibly empty, never ending inside a character. */
  push(id: number): string {
    return this.decoder.decode(this.tokenizer.tokenBytes(id, this.options), { stream: true });
  }

  /** The text still held back at the end of the stream (incomplete bytes become U+FFFD); resets the stream. */
  flush(): string {
    return this.decoder.decode();
  }
}

export interface StopResult {
  /** Text that is safe to show now. */
  text: string;
  /** True once a stop string was found; `text` then ends right before it and later input is ignored. */
  stopped: boolean;
  /** The stop string found. */
  stop?: string;
}

export class StopMatcher {
  private readonly stops: readonly string[];
  private held = '';
  private done = false;

  /** Empty stop strings are ignored. */
  constructor(stops: readonly string[]) {
    this.stops = stops.filter((s) => s.length > 0);
  }

  get stopped(): boolean {
    return this.done;
  }

  push(delta: string): StopResult {
    if (this.done) return { text: '', stopped: true };
    const text = this.held + delta;
    const found = this.firstStop(text);
    if (found) {
      this.done = true;
      this.held = '';
      return { text: text.slice(0, found.at), stopped: true, stop: found.stop };
    }
    const keep = this.longestStopPrefixAtEnd(text);
    this.held = text.slice(text.length - keep);
    return { text: text.slice(0, text.length - keep), stopped: false };
  }

  /** The text held back as a possible stop-string start, released at the end of the stream. */
  flush(): string {
    const rest = this.done ? '' : this.held;
    this.held = '';
    return rest;
  }

  /** Earliest occurrence of any stop string; at equal positions the first one listed wins. */
  private firstStop(text: string): { at: number; stop: string } | undefined {
    let best: { at: number; stop: string } | undefined;
    for (const stop of this.stops) {
      const at = text.indexOf(stop);
      if (at >= 0 && (!best || at < best.at)) best = { at, stop };
    }
    return best;
  }

  /** Length of the longest end of `text` that begins some stop string. */
  private longestStopPrefixAtEnd(text: string): number {
    let longest = 0;
    for (const stop of this.stops) {
      for (let n = Math.min(stop.length - 1, text.length); n > longest; n--) {
        if (text.endsWith(stop.slice(0, n))) {
          longest = n;
          break;
        }
      }
    }
    return longest;
  }
}
