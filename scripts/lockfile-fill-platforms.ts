// `npm run lockfile:fill-platforms`, after any `npm install` that changed package-lock.json.
//
// Some packages ship their binary as one optional dependency per platform (buf, nx). When
// the registry a machine uses does not serve the other platforms' packages, npm leaves them
// out of the lockfile, and `npm ci` then refuses the lockfile as out of sync. This adds the
// entries npm would have written (version, os, cpu, libc; optional), so the lockfile is
// complete for every platform. Packages for this platform are never touched.
import { readFileSync, writeFileSync } from 'node:fs';

interface LockEntry {
  version?: string;
  dev?: boolean;
  optional?: boolean;
  optionalDependencies?: Record<string, string>;
  os?: string[];
  cpu?: string[];
  libc?: string[];
}

const OS = ['darwin', 'linux', 'win32', 'freebsd', 'android', 'openbsd', 'sunos', 'aix'];
const CPU: Record<string, string> = {
  x64: 'x64',
  arm64: 'arm64',
  aarch64: 'arm64',
  arm: 'arm',
  armv7: 'arm',
  ia32: 'ia32',
  ppc64: 'ppc64',
  s390x: 's390x',
  riscv64: 'riscv64',
};

function platformOf(name: string): Pick<LockEntry, 'os' | 'cpu' | 'libc'> | undefined {
  const tokens = name.split('/').pop()!.split('-');
  const os = tokens.find((token) => OS.includes(token));
  const cpu = tokens.map((token) => CPU[token]).find(Boolean);
  if (!os || !cpu) return undefined;
  const libc = tokens.includes('musl')
    ? ['musl']
    : os === 'linux' && tokens.includes('gnu')
      ? ['glibc']
      : undefined;
  return { os: [os], cpu: [cpu], ...(libc ? { libc } : {}) };
}

const path = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(path, 'utf8')) as { packages: Record<string, LockEntry> };
const added: string[] = [];
for (const [key, entry] of Object.entries(lock.packages)) {
  for (const [name, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const childKey = `node_modules/${name}`;
    const platform = platformOf(name);
    if (lock.packages[childKey] || !platform || !/^\d+\.\d+\.\d+/.test(version)) continue;
    lock.packages[childKey] = {
      version,
      ...(platform.cpu ? { cpu: platform.cpu } : {}),
      ...(entry.dev ? { dev: true } : {}),
      ...(platform.libc ? { libc: platform.libc } : {}),
      optional: true,
      ...(platform.os ? { os: platform.os } : {}),
    };
    added.push(`${name}@${version} (for ${key.replace(/^node_modules\//, '')})`);
  }
}
lock.packages = Object.fromEntries(
  Object.entries(lock.packages).sort(([a], [b]) =>
    a === '' ? -1 : b === '' ? 1 : a.localeCompare(b),
  ),
);
writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`);
process.stdout.write(
  added.length ? `added:\n  ${added.join('\n  ')}\n` : 'lockfile already complete\n',
);
