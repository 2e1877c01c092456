/**
 * A command encoder and its open compute pass for one forward batch,
 * restarted between passes (buffer copies go between them) and submissions
 * (a streamed MoE layer submits up to its router, then its expert FFN).
 */
export class Recording {
  encoder: GPUCommandEncoder;
  pass: GPUComputePassEncoder;
  private passEnded = false;

  constructor(private readonly device: GPUDevice, private readonly label: string) {
    this.encoder = device.createCommandEncoder({ label });
    this.pass = this.encoder.beginComputePass({ label: 'forward' });
  }

  endPass(): void {
    this.pass.end();
    this.passEnded = true;
  }

  /** Opens a new pass in the same encoder (after the previous one was ended). */
  beginPass(): void {
    this.pass = this.encoder.beginComputePass({ label: 'forward' });
    this.passEnded = false;
  }

  /** Submits what was recorded (ending the open pass if `pass` is still open) and starts anew. */
  submit(): void {
    if (!this.passEnded) this.pass.end();
    this.device.queue.submit([this.encoder.finish()]);
    this.encoder = this.device.createCommandEncoder({ label: this.label });
    this.beginPass();
  }
}
