import { costCounterOf } from './cost-counter';
import type { CostCounter } from './cost-counter';
import { attachArena, UniformArena } from './uniform-arena';

/**
 * A command encoder and its open compute pass for one forward batch,
 * restarted between passes (buffer copies go between them) and submissions
 * (a streamed MoE layer submits up to its router, then its expert FFN).
 * Counts the passes it begins and the submissions it makes on the device's
 * cost counter (cost-counter.ts). Its passes stage every dispatch's
 * parameters in one uniform arena (uniform-arena.ts), written to the GPU once
 * per submission: the caller's (kept across batches), or its own.
 */
export class Recording {
  encoder: GPUCommandEncoder;
  pass: GPUComputePassEncoder;
  private passEnded = false;
  private readonly cost: CostCounter;
  private readonly arena: UniformArena;
  private readonly ownsArena: boolean;

  constructor(private readonly device: GPUDevice, private readonly label: string, arena?: UniformArena) {
    this.cost = costCounterOf(device);
    this.ownsArena = arena === undefined;
    this.arena = arena ?? new UniformArena(device, `${label} params`);
    this.encoder = device.createCommandEncoder({ label });
    this.pass = this.encoder.beginComputePass({ label: 'forward' });
    attachArena(this.pass, this.arena);
    this.cost.passes++;
  }

  endPass(): void {
    this.pass.end();
    this.passEnded = true;
  }

  /** Opens a new pass in the same encoder (after the previous one was ended). */
  beginPass(): void {
    this.pass = this.encoder.beginComputePass({ label: 'forward' });
    attachArena(this.pass, this.arena);
    this.passEnded = false;
    this.cost.passes++;
  }

  /** Submits what was recorded (ending the open pass if `pass` is still open) and starts anew. */
  submit(): void {
    this.submitRecorded();
    this.encoder = this.device.createCommandEncoder({ label: this.label });
    this.beginPass();
  }

  /** Submits what was recorded (ending the open pass if `pass` is still open), the batch's last submission: nothing new is opened. */
  finish(): void {
    this.submitRecorded();
    // A borrowed arena stays with its owner; a buffer destroyed after submit lives until the GPU is done with it.
    if (this.ownsArena) this.arena.destroy();
  }

  private submitRecorded(): void {
    if (!this.passEnded) this.endPass();
    const commands = this.encoder.finish();
    this.cost.upload(this.arena.flush());
    // Not encoding time: a software adapter may run the work inside submit.
    this.cost.paused(() => this.device.queue.submit([commands]));
    this.arena.submitted();
    this.cost.submissions++;
  }
}
