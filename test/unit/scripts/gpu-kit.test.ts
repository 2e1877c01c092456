import { describe, expect, it } from 'vitest';
import { adapterSlug, isCpuAdapter } from '../../../bench/adapter-slug';
import type { AdapterNames } from '../../../bench/adapter-slug';
import { debDataMember, NotADebError } from '../../../scripts/gpu-kit/deb-data';
import { checkKitSize, KIT_BUNDLES, KIT_LIMIT_BYTES, KitTooLargeError, kitCopies } from '../../../scripts/gpu-kit/kit-layout';

const LAVAPIPE: AdapterNames = {
  vendor: 'mesa',
  architecture: 'software',
  device: 'llvmpipe-llvm-15-0-6-256-bits-',
  description: 'llvmpipe: Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6) 0.0.1',
  isFallbackAdapter: true,
};
const H200: AdapterNames = { vendor: 'nvidia', architecture: 'hopper', device: 'nvidia-h200', description: 'NVIDIA: 570.124.06', isFallbackAdapter: false };

describe('adapterSlug', () => {
  it('names a GPU by its device, led by the vendor once', () => {
    expect(adapterSlug(H200)).toBe('gpu-nvidia-h200');
    expect(adapterSlug({ ...H200, vendor: 'amd', device: 'Radeon RX 7900 XTX' })).toBe('gpu-amd-radeon-rx-7900-xtx');
  });

  it('falls back to the architecture, then the vendor alone', () => {
    expect(adapterSlug({ ...H200, device: '' })).toBe('gpu-nvidia-hopper');
    expect(adapterSlug({ ...H200, device: '', architecture: '' })).toBe('gpu-nvidia');
    expect(adapterSlug({ ...H200, vendor: '', device: '', architecture: '' })).toBe('gpu-unknown');
  });

  it('names the software adapters as bench/results does', () => {
    expect(adapterSlug(LAVAPIPE)).toBe('cpu-lavapipe');
    expect(adapterSlug({ vendor: 'google', architecture: 'swiftshader', device: '', description: 'SwiftShader Device', isFallbackAdapter: true })).toBe('cpu-swiftshader');
    expect(adapterSlug({ ...H200, isFallbackAdapter: true })).toBe('cpu-nvidia-h200');
  });
});

describe('isCpuAdapter', () => {
  it('is true for fallback or software adapters only', () => {
    expect(isCpuAdapter(LAVAPIPE)).toBe(true);
    expect(isCpuAdapter({ ...LAVAPIPE, isFallbackAdapter: false })).toBe(true);
    expect(isCpuAdapter(H200)).toBe(false);
  });
});

describe('kit layout', () => {
  it('bundles the four benchmarks, the adapter probe and the CLI', () => {
    expect(Object.keys(KIT_BUNDLES).sort()).toEqual(['adapter', 'decode', 'experts', 'kernels', 'prefill', 'webmoe']);
  });

  it('compresses the two large binaries and nothing else', () => {
    const copies = kitCopies('/usr/bin/node', '/repo');
    expect(copies.filter((c) => c.xz).map((c) => c.to)).toEqual(['bin/node', 'node_modules/webgpu/dist/linux-x64/dawn.node']);
    expect(copies.find((c) => c.to === 'node_modules/webgpu/index.js')?.from).toBe('/repo/node_modules/webgpu/index.js');
  });

  it('refuses a kit at or over its limit', () => {
    expect(checkKitSize([KIT_LIMIT_BYTES - 2, 1])).toBe(KIT_LIMIT_BYTES - 1);
    expect(() => checkKitSize([KIT_LIMIT_BYTES / 2, KIT_LIMIT_BYTES / 2])).toThrow(KitTooLargeError);
  });
});

/** An ar archive of members (name, bytes), headers as Debian's tools write them. */
function arArchive(members: [string, Uint8Array][]): Uint8Array {
  const parts: Uint8Array[] = [new TextEncoder().encode('!<arch>\n')];
  for (const [name, data] of members) {
    const header = `${name.padEnd(16)}${'0'.padEnd(12)}${'0'.padEnd(6)}${'0'.padEnd(6)}${'100644'.padEnd(8)}${String(data.length).padEnd(10)}\`\n`;
    parts.push(new TextEncoder().encode(header), data);
    if (data.length % 2 === 1) parts.push(new Uint8Array([0x0a]));
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

describe('debDataMember', () => {
  it('finds the data member past odd-sized members and their padding', () => {
    const data = new Uint8Array([1, 2, 3, 4, 5]);
    const deb = arArchive([['debian-binary', new TextEncoder().encode('2.0\n')], ['control.tar.xz', new Uint8Array(7)], ['data.tar.xz', data]]);
    const member = debDataMember(deb);
    expect(member.name).toBe('data.tar.xz');
    expect([...deb.subarray(member.offset, member.offset + member.bytes)]).toEqual([...data]);
  });

  it('rejects what is not a .deb', () => {
    expect(() => debDataMember(new TextEncoder().encode('PK\u0003\u0004 not an ar file'))).toThrow(NotADebError);
    expect(() => debDataMember(arArchive([['debian-binary', new Uint8Array(4)]]))).toThrow(/no data.tar member/);
  });
});
