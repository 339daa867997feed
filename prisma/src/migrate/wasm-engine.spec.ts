import { describe, expect, it } from 'vitest';
import { Prisma } from '../index';
import { schemaEngineVersion } from './wasm-engine';

describe('the WebAssembly schema engine', () => {
  // Pinned by hand in package.json (docs/database.md, "Versions"): the migrations it writes
  // and applies must be those of the `prisma` CLI release the client is generated with.
  it('is the engine build of the Prisma release that generated the client', async () => {
    expect(await schemaEngineVersion()).toBe(Prisma.prismaVersion.engine);
  });
});
