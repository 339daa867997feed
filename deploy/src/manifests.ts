// Rendering the kustomize overlays in deploy/kubernetes/ and reading what they produce, for the
// CI check (kubernetes.spec.ts). No cluster is needed: `kubectl kustomize` only builds.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const KUBERNETES_DIR = join(REPO_ROOT, 'deploy/kubernetes');
export const OVERLAYS = ['dev', 'prod'] as const;
export type Overlay = (typeof OVERLAYS)[number];

/** The dev overlay's Secret comes from this file, which is not committed... */
export const DEV_SECRETS_FILE = 'dev/secrets.env';
/** ...and lists the keys of the Secret every overlay references. */
export const SECRETS_EXAMPLE_FILE = 'dev/secrets.env.example';

/** A rendered Kubernetes object: only what the checks read is typed. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

/** Whether `kubectl` (with its built-in kustomize) is on the PATH. */
export function kubectlVersion(): string | undefined {
  const result = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim().split('\n').join(', ') : undefined;
}

/** `KEY=VALUE` lines, as kustomize's `envs:` reads them (comments and blank lines skipped). */
export function readEnvFile(path: string): Record<string, string> {
  const entries: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const at = trimmed.indexOf('=');
    if (at <= 0) throw new Error(`${path}: not KEY=VALUE: ${line}`);
    entries[trimmed.slice(0, at)] = trimmed.slice(at + 1);
  }
  return entries;
}

/**
 * Renders every overlay with `kubectl kustomize`, in a copy of deploy/kubernetes/ so that the
 * dev overlay's git-ignored secrets.env can be made from its example without touching the
 * checkout (a developer's own secrets.env is never read).
 */
export function renderOverlays(): Record<Overlay, KubeObject[]> {
  const workDir = mkdtempSync(join(tmpdir(), 'platform-kustomize-'));
  try {
    const copy = join(workDir, 'kubernetes');
    cpSync(KUBERNETES_DIR, copy, {
      recursive: true,
      filter: (source) => source !== join(KUBERNETES_DIR, DEV_SECRETS_FILE),
    });
    cpSync(join(copy, SECRETS_EXAMPLE_FILE), join(copy, DEV_SECRETS_FILE));
    const rendered = {} as Record<Overlay, KubeObject[]>;
    for (const overlay of OVERLAYS) {
      const result = spawnSync('kubectl', ['kustomize', join(copy, overlay)], {
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
      });
      if (result.status !== 0) {
        throw new Error(`kubectl kustomize ${overlay} failed:\n${result.stderr || result.error}`);
      }
      rendered[overlay] = parseObjects(result.stdout, overlay);
    }
    return rendered;
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

function parseObjects(text: string, source: string): KubeObject[] {
  return parseAllDocuments(text).flatMap((document) => {
    if (document.errors.length > 0) {
      throw new Error(`${source}: ${document.errors.map((e) => e.message).join('; ')}`);
    }
    const value = document.toJSON() as KubeObject | null;
    return value ? [value] : [];
  });
}

export const describeObject = (object: KubeObject) => `${object.kind}/${object.metadata.name}`;

export function overlayFile(overlay: Overlay, file: string): string {
  const path = join(KUBERNETES_DIR, overlay, file);
  if (!existsSync(path)) throw new Error(`missing ${path}`);
  return readFileSync(path, 'utf8');
}

/** CPU in millicores, memory in bytes, from a Kubernetes quantity ("250m", "1", "384Mi"). */
export function parseQuantity(quantity: string | number): number {
  const text = String(quantity);
  const match = /^(\d+(?:\.\d+)?)(m|k|M|G|Ki|Mi|Gi)?$/.exec(text);
  if (!match) throw new Error(`unsupported quantity ${text}`);
  const factor: Record<string, number> = {
    m: 1e-3,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    Ki: 1024,
    Mi: 1024 ** 2,
    Gi: 1024 ** 3,
  };
  return Number(match[1]) * (match[2] ? factor[match[2]]! : 1);
}
