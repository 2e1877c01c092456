import { costCounterOf } from './cost-counter';
import type { CostCounter } from './cost-counter';

/**
 * A command encoder and its open compute pass for one forward batch,
 * restarted between passes (buffer copies go between them) and submissions
 * (a streamed MoE layer submits up to its router, then its expert FFN).
 * Counts the passes it begins and the submissions it makes on the device's
 * cost counter (cost-counter.ts).
 */
export class Recording {
  encoder: GPUCommandEncoder;
  pass: GPUComputePassEncoder;
  private passEnded = false;
  private readonly cost: CostCounter;

  constructor(private readonly device: GPUDevice, private readonly label: string) {
    this.cost = costCounterOf(device);
    this.encoder = device.createCommandEncoder({ label });
    this.pass = this.encoder.beginComputePass({ label: 'forward' });
    this.cost.passes++;
  }

  endPass(): void {
    this.pass.end();
    this.passEnded = true;
  }

  /** Opens a new pass in the same encoder (after the previous one was ended). */
  beginPass(): void {
    this.pass = this.encoder.beginComputePass({ label: 'forward' });
    this.passEnded = false;
    this.cost.passes++;
  }

  /** Submits what was recorded (ending the open pass if `pass` is still open) and starts anew. */
  submit(): void {
    this.finish();
    this.encoder = this.device.createCommandEncoder({ label: this.label });
    this.beginPass();
  }

  /** Submits what was recorded (ending the open pass if `pass` is still open), the batch's last submission: nothing new is opened. */
  finish(): void {
    if (!this.passEnded) this.endPass();
    const commands = this.encoder.finish();
    // Not encoding time: a software adapter may run the work inside submit.
    this.cost.paused(() => this.device.queue.submit([commands]));
    this.cost.submissions++;
  }
}
