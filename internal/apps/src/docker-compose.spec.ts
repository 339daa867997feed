// What users of docker-compose.yml and the Dockerfile rely on, checked without a Docker engine:
// every app is there, configured the way its environment.ts expects, healthchecked, started in
// order after the migration, and reachable from outside only through the gateway.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DEFAULT_PORTS, subgraphEnv } from '@platform/config';
import { APPS, REPO_ROOT, type AppDefinition } from './apps.registry';

interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[] | string;
  environment?: Record<string, string | number | boolean | null>;
  healthcheck?: { test?: string[] | string; disable?: boolean };
  depends_on?: Record<string, { condition?: string }> | string[];
  ports?: unknown[];
  volumes?: (string | { source?: string })[];
  restart?: string;
}

interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

const INFRASTRUCTURE = { postgres: 'DATABASE_URL', redis: 'REDIS_URL', rabbitmq: 'RABBITMQ_URL' };
const BIND_HOST_VARIABLE = { service: 'GRPC_HOST', subgraph: 'HOST', gateway: 'GATEWAY_HOST' };

// Anchors and `<<` merge keys are resolved the way Compose resolves them.
const compose = parse(readFileSync(join(REPO_ROOT, 'docker-compose.yml'), 'utf8'), {
  merge: true,
}) as ComposeFile;
const dockerfile = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8')
  // Continuation lines belong to their instruction.
  .replace(/\\\r?\n/g, ' ');

function service(name: string): ComposeService {
  const found = compose.services[name];
  if (!found) throw new Error(`docker-compose.yml has no service "${name}"`);
  return found;
}

/** A service's environment as Compose would pass it, with `${VAR:-default}` at its default. */
function environmentOf(name: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(service(name).environment ?? {})) {
    env[key] = String(value ?? '').replace(
      /\$\{(\w+)(?::?([-?])([^}]*))?\}/g,
      (_match, variable: string, kind?: string, rest?: string) =>
        kind === '-' ? (rest ?? '') : `<${variable}>`,
    );
  }
  return env;
}

function dependencies(name: string): Record<string, string | undefined> {
  const dependsOn = service(name).depends_on ?? {};
  return Array.isArray(dependsOn)
    ? Object.fromEntries(dependsOn.map((dependency) => [dependency, undefined]))
    : Object.fromEntries(
        Object.entries(dependsOn).map(([dependency, spec]) => [dependency, spec.condition]),
      );
}

function transitiveDependencies(name: string, seen = new Set<string>()): Set<string> {
  for (const dependency of Object.keys(dependencies(name))) {
    if (seen.has(dependency)) continue;
    seen.add(dependency);
    transitiveDependencies(dependency, seen);
  }
  return seen;
}

/** The *_SERVICE_ADDR / *_SUBGRAPH_URL variables an app's environment.ts reads. */
function addressVariablesRead(app: AppDefinition): string[] {
  const source = readFileSync(join(REPO_ROOT, app.dir, 'src/environment.ts'), 'utf8');
  const names = new Set(source.match(/\b[A-Z][A-Z0-9_]*_(?:SERVICE_ADDR|SUBGRAPH_URL)\b/g));
  // The shared subgraph shape declares some of them (AUTH_SERVICE_ADDR).
  if (/\bsubgraphEnv\(/.test(source)) {
    for (const key of Object.keys(subgraphEnv(0))) {
      if (/_(?:SERVICE_ADDR|SUBGRAPH_URL)$/.test(key)) names.add(key);
    }
  }
  return [...names].sort();
}

/** The port an app listens on inside its container. */
function listenPort(app: AppDefinition): string | undefined {
  return environmentOf(app.name)[app.portVariable];
}

const commandText = (svc: ComposeService) =>
  Array.isArray(svc.command) ? svc.command.join(' ') : (svc.command ?? '');
const healthcheckText = (svc: ComposeService) => {
  const test = svc.healthcheck?.test;
  return Array.isArray(test) ? test.join(' ') : (test ?? '');
};

describe('docker-compose.yml', () => {
  it('has a service for each of the eight apps, started from the shared image', () => {
    expect(APPS).toHaveLength(8);
    const image = service('migrate').image;
    expect(image).toBeTruthy();
    for (const app of APPS) {
      const svc = service(app.name);
      expect(svc.image, app.name).toBe(image);
      expect(commandText(svc), app.name).toMatch(
        new RegExp(`^node (--[\\w-]+ )*${app.dir}/dist/main\\.js$`),
      );
    }
  });

  describe.each(APPS)('$name', (app) => {
    const env = () => environmentOf(app.name);

    it('requires INTERNAL_TOKEN from the caller', () => {
      expect(service(app.name).environment?.['INTERNAL_TOKEN']).toMatch(
        /^\$\{INTERNAL_TOKEN:\?.+\}$/,
      );
    });

    it('listens on all interfaces, on an explicit port', () => {
      expect(env()[BIND_HOST_VARIABLE[app.kind]]).toBe('0.0.0.0');
      expect(listenPort(app)).toMatch(/^\d+$/);
    });

    it('has a healthcheck against its own port', () => {
      const svc = service(app.name);
      expect(svc.healthcheck?.disable).not.toBe(true);
      const test = healthcheckText(svc);
      expect(test).toMatch(/^CMD(-SHELL)? /);
      expect(test).toContain(app.kind === 'service' ? 'scripts/grpc-healthcheck.mjs' : '/health');
      // Either the literal port or the variable that holds it.
      expect(
        test.includes(app.portVariable) || test.includes(`:${listenPort(app)}`),
        `${app.name} healthcheck: ${test}`,
      ).toBe(true);
    });

    it('is given the address of every app its environment.ts reads, by compose hostname', () => {
      const variables = addressVariablesRead(app);
      if (app.kind !== 'service') expect(variables).toContain('AUTH_SERVICE_ADDR');
      for (const variable of variables) {
        const target = APPS.find((other) => other.addressVariable === variable);
        expect(target, `no app is found through ${variable}`).toBeDefined();
        const port = listenPort(target!);
        expect(env()[variable], `${app.name} ${variable}`).toBe(
          target!.kind === 'subgraph'
            ? `http://${target!.name}:${port}/graphql`
            : `${target!.name}:${port}`,
        );
        // And waits for it to be healthy before starting.
        expect(dependencies(app.name)[target!.name], `${app.name} -> ${target!.name}`).toBe(
          'service_healthy',
        );
      }
    });

    it('starts only after the migration has completed', () => {
      expect(transitiveDependencies(app.name)).toContain('migrate');
    });

    if (app.kind === 'service') {
      it('reaches PostgreSQL, Redis and RabbitMQ by compose hostname, once they are healthy', () => {
        for (const [host, variable] of Object.entries(INFRASTRUCTURE)) {
          const value = env()[variable];
          expect(value, `${app.name} ${variable}`).toBeDefined();
          expect(new URL(value!).hostname).toBe(host);
          expect(dependencies(app.name)[host]).toBe('service_healthy');
        }
        expect(dependencies(app.name)['migrate']).toBe('service_completed_successfully');
      });
    } else {
      it('reaches Redis (ended sessions) by compose hostname, once it is healthy', () => {
        expect(new URL(env()['REDIS_URL'] ?? 'redis://unset').hostname).toBe('redis');
        expect(transitiveDependencies(app.name)).toContain('redis');
      });
    }
  });

  it('passes ADMIN_EMAIL and ADMIN_PASSWORD through to the users subgraph (which creates the admin)', () => {
    for (const name of ['users-subgraph']) {
      const env = service(name).environment ?? {};
      expect(env['ADMIN_EMAIL'], name).toBe('${ADMIN_EMAIL:-}');
      expect(env['ADMIN_PASSWORD'], name).toBe('${ADMIN_PASSWORD:-}');
    }
  });

  it('publishes a port for the gateway only (and the mail catcher on this machine only)', () => {
    for (const [name, svc] of Object.entries(compose.services)) {
      if (name === 'gateway') continue;
      if (name === 'mailpit') {
        expect(svc.ports?.map(String)).toEqual(['127.0.0.1:${MAILPIT_PORT:-8025}:8025']);
        continue;
      }
      expect(svc.ports, name).toBeUndefined();
    }
    const gateway = APPS.find((app) => app.kind === 'gateway')!;
    const ports = service(gateway.name).ports ?? [];
    expect(ports).toHaveLength(1);
    expect(String(ports[0])).toBe(
      `\${GATEWAY_PORT:-${DEFAULT_PORTS.gateway}}:${listenPort(gateway)}`,
    );
  });

  it.each(['auth-service', 'notification-service'])(
    '%s sends its mail to the bundled mail catcher unless SMTP_URL says otherwise, so production starts and logs no one-time code',
    (name) => {
      expect(healthcheckText(service('mailpit'))).toMatch(/^CMD(-SHELL)? \S/);
      expect(service(name).environment?.['SMTP_URL']).toBe('${SMTP_URL:-smtp://mailpit:1025}');
      expect(environmentOf(name)['NODE_ENV']).toBe('production');
    },
  );

  it.each(Object.keys(INFRASTRUCTURE))('%s has a healthcheck and a named volume', (name) => {
    const svc = service(name);
    expect(healthcheckText(svc)).toMatch(/^CMD(-SHELL)? \S/);
    const volumes = svc.volumes ?? [];
    expect(volumes.length, name).toBeGreaterThan(0);
    for (const volume of volumes) {
      const source = typeof volume === 'string' ? volume.split(':')[0]! : volume.source!;
      expect(Object.keys(compose.volumes ?? {}), `${name} volume ${source}`).toContain(source);
    }
  });

  it('runs the migration once, after PostgreSQL is healthy, with the bundled migrate script', () => {
    const migrate = service('migrate');
    expect(migrate.restart).toBe('no');
    expect(commandText(migrate)).toMatch(/^node (--[\w-]+ )*prisma\/dist\/migrate\.js deploy$/);
    expect(dependencies('migrate')['postgres']).toBe('service_healthy');
    expect(new URL(environmentOf('migrate')['DATABASE_URL']!).hostname).toBe('postgres');
    expect(environmentOf('migrate')['DATABASE_URL']).toBe(
      environmentOf('user-service')['DATABASE_URL'],
    );
  });
});

describe('Dockerfile', () => {
  it('installs from the lockfile with npm ci and builds every app with Nx', () => {
    expect(dockerfile).toMatch(/^RUN\b.*\bnpm ci\b/m);
    expect(dockerfile).toMatch(/^RUN\b.*\bnx run-many -t build\b/m);
  });

  it('installs from the manifests before copying the sources, so a source change keeps the install layer', () => {
    const lines = dockerfile.split('\n');
    const install = lines.findIndex((line) => /^RUN\b.*\bnpm ci\b/.test(line));
    const sources = lines.findIndex((line) => /^COPY \. \.$/.test(line.trim()));
    expect(install).toBeGreaterThan(-1);
    expect(sources).toBeGreaterThan(install);
    expect(lines.slice(0, install).join('\n')).toMatch(/^COPY\b.*package-lock\.json/m);
  });

  it('runs on a Node.js LTS line that is not end-of-life', () => {
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:(22|24|26)-/m);
  });

  it('produces what the compose file runs, and runs it as the node user', () => {
    expect(dockerfile).toContain('--outfile=prisma/dist/migrate.js');
    expect(dockerfile).toContain('scripts/grpc-healthcheck.mjs');
    expect(existsSync(join(REPO_ROOT, 'scripts/grpc-healthcheck.mjs'))).toBe(true);
    const stages = dockerfile.split(/^FROM\b/m);
    expect(stages.at(-1)).toMatch(/^USER node$/m);
  });
});
