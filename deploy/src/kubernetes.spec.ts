// What a team applying deploy/kubernetes/ relies on, checked without a cluster: every overlay
// renders with `kubectl kustomize`, every object is valid against the Kubernetes API schemas,
// and the policies hold — pinned images, hardened pods with probes and resources, every app's
// environment complete and consistent with its environment module (the module itself is
// loaded, with `loadEnv` captured instead of run), secrets only by reference, gRPC clients on
// `dns:///` + headless Services, PDBs, HPAs, the Ingress, and NetworkPolicies that admit
// exactly the calls the apps' address variables say they make.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import {
  APPS,
  EDGE_TELEMETRY_VARIABLES,
  TELEMETRY_VARIABLES,
  type AppDefinition,
} from '@platform/apps';
import type * as config from '@platform/config';
import { parseEnv, type EnvRule } from '@platform/config';
import {
  DEV_SECRETS_FILE,
  KUBERNETES_DIR,
  OVERLAYS,
  REPO_ROOT,
  SECRETS_EXAMPLE_FILE,
  describeObject,
  kubectlVersion,
  overlayFile,
  parseQuantity,
  readEnvFile,
  renderOverlays,
  type KubeObject,
  type Overlay,
} from './manifests';
import {
  NetworkPolicies,
  selectorMatches,
  type Endpoint,
  type LabelSelector,
} from './network-policy';
import { schemaErrors } from './schemas';

// ---------------------------------------------------------------------------------------------
// Each app's environment module, as written: importing it calls loadEnv(shape, rules), which is
// captured here instead of parsing process.env.
// ---------------------------------------------------------------------------------------------
type Shape = z.ZodRawShape;
const captured = vi.hoisted(() => [] as { shape: unknown; rules: unknown }[]);
vi.mock('@platform/config', async (importOriginal) => {
  const actual = await importOriginal<typeof config>();
  return {
    ...actual,
    loadEnv: (shape: unknown, rules: unknown = []) => {
      captured.push({ shape, rules });
      // The module may read its env at import (the gateway's operation limits): nothing set.
      return new Proxy({}, { get: () => undefined });
    },
  };
});

interface EnvironmentModule {
  shape: Shape;
  rules: readonly EnvRule<Record<string, unknown>>[];
}

async function environmentModule(app: AppDefinition): Promise<EnvironmentModule> {
  const before = captured.length;
  await import(pathToFileURL(join(REPO_ROOT, app.dir, 'src/environment.ts')).href);
  const entry = captured[before];
  if (!entry) throw new Error(`${app.dir}/src/environment.ts did not call loadEnv`);
  return { shape: entry.shape as Shape, rules: entry.rules as EnvRule<Record<string, unknown>>[] };
}

/** The value a variable takes when unset: its default, `undefined` when optional, else a miss. */
function unsetValue(schema: z.ZodType): { required: boolean; fallback: unknown } {
  const result = schema.safeParse(undefined);
  return result.success
    ? { required: false, fallback: result.data }
    : { required: true, fallback: undefined };
}

// ---------------------------------------------------------------------------------------------
// Manifest helpers
// ---------------------------------------------------------------------------------------------
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    configMapKeyRef?: { name: string; key: string; optional?: boolean };
    secretKeyRef?: { name: string; key: string; optional?: boolean };
    [other: string]: unknown;
  };
}

interface Probe {
  httpGet?: { path: string; port: number | string };
  grpc?: { port: number; service?: string };
  tcpSocket?: { port: number | string };
  exec?: unknown;
}

interface SecurityContext {
  runAsNonRoot?: boolean;
  runAsUser?: number;
  readOnlyRootFilesystem?: boolean;
  allowPrivilegeEscalation?: boolean;
  privileged?: boolean;
  capabilities?: { drop?: string[]; add?: string[] };
  seccompProfile?: { type: string };
}

interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  ports?: { name?: string; containerPort: number }[];
  env?: EnvVar[];
  envFrom?: unknown[];
  resources?: {
    requests?: Record<string, string | number>;
    limits?: Record<string, string | number>;
  };
  startupProbe?: Probe;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  lifecycle?: { preStop?: { sleep?: { seconds: number } } };
  securityContext?: SecurityContext;
  volumeMounts?: { name: string; mountPath: string }[];
}

interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  securityContext?: SecurityContext;
  automountServiceAccountToken?: boolean;
  enableServiceLinks?: boolean;
  terminationGracePeriodSeconds?: number;
  volumes?: { name: string; emptyDir?: unknown }[];
  restartPolicy?: string;
}

interface Workload extends KubeObject {
  spec: {
    replicas?: number;
    selector?: LabelSelector;
    template: {
      metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
      spec: PodSpec;
    };
  };
}

const APP_LABEL = 'app.kubernetes.io/name';
const IMAGE = 'platform-backend';
const BASE_TAG = '0.0.0-set-by-overlay';
const SECRET_NAME = 'platform-secrets';
const CONFIG_NAME = 'platform-config';
const NAME_LABEL = 'kubernetes.io/metadata.name';

/** Variables that hold credentials: only ever from a Secret. */
const SECRET_VARIABLES = new Set([
  'INTERNAL_TOKEN',
  'DATABASE_URL',
  'REDIS_URL',
  'RABBITMQ_URL',
  'SMTP_URL',
  'ADMIN_PASSWORD',
]);
const looksSecret = (name: string, value?: string) =>
  SECRET_VARIABLES.has(name) ||
  /(?:TOKEN|PASSWORD|SECRET|_KEY)$/.test(name) ||
  (value !== undefined && /\/\/[^/@\s]*:[^/@\s]*@/.test(value));

/** Ports of the external stores, by the variable that points at them. */
const STORE_PORTS: Record<string, number> = {
  DATABASE_URL: 5432,
  REDIS_URL: 6379,
  RABBITMQ_URL: 5672,
  SMTP_URL: 587,
};

const kubectl = kubectlVersion();

function byKind<T extends KubeObject = KubeObject>(objects: readonly KubeObject[], kind: string) {
  return objects.filter((object) => object.kind === kind) as T[];
}

function podSpecs(objects: readonly KubeObject[]): { owner: string; spec: PodSpec }[] {
  return [...byKind<Workload>(objects, 'Deployment'), ...byKind<Workload>(objects, 'Job')].map(
    (workload) => ({ owner: describeObject(workload), spec: workload.spec.template.spec }),
  );
}

function appContainer(deployment: Workload): Container {
  const containers = deployment.spec.template.spec.containers;
  expect(containers, describeObject(deployment)).toHaveLength(1);
  return containers[0]!;
}

function listenPort(app: AppDefinition, container: Container): number {
  const value = container.env?.find((env) => env.name === app.portVariable)?.value;
  expect(value, `${app.name} ${app.portVariable}`).toMatch(/^\d+$/);
  return Number(value);
}

/** The app's /metrics port (METRICS_PORT), set explicitly in every Deployment. */
function metricsPort(app: AppDefinition, container: Container): number {
  const value = container.env?.find((env) => env.name === 'METRICS_PORT')?.value;
  expect(value, `${app.name} METRICS_PORT`).toMatch(/^[1-9]\d*$/);
  return Number(value);
}

// ---------------------------------------------------------------------------------------------

describe.skipIf(!kubectl)('deploy/kubernetes', () => {
  let rendered: Record<Overlay, KubeObject[]>;
  const modules = new Map<string, EnvironmentModule>();
  const secretKeys = readEnvFile(join(KUBERNETES_DIR, SECRETS_EXAMPLE_FILE));

  beforeAll(async () => {
    rendered = renderOverlays();
    for (const app of APPS) modules.set(app.name, await environmentModule(app));
  });

  it('has a base and the dev and prod overlays, the dev Secret from a git-ignored file', () => {
    const base = parseYaml(
      readFileSync(join(KUBERNETES_DIR, 'base/kustomization.yaml'), 'utf8'),
    ) as {
      resources: string[];
    };
    expect(base.resources.length).toBeGreaterThan(0);
    for (const overlay of OVERLAYS) {
      const kustomization = parseYaml(overlayFile(overlay, 'kustomization.yaml')) as {
        resources: string[];
        secretGenerator?: { envs?: string[]; literals?: string[]; files?: string[] }[];
      };
      expect(kustomization.resources, overlay).toContain('../base');
      for (const generator of kustomization.secretGenerator ?? []) {
        expect(generator.literals, `${overlay}: a secretGenerator with literals`).toBeUndefined();
        expect(generator.files, `${overlay}: a secretGenerator from files`).toBeUndefined();
        expect(generator.envs).toEqual(['secrets.env']);
      }
    }
    expect(overlayFile('dev', '.gitignore').split('\n')).toContain(
      DEV_SECRETS_FILE.replace('dev/', ''),
    );
  });

  describe.each(OVERLAYS)('%s overlay', (overlay) => {
    const objects = () => rendered[overlay];
    const namespace = () => byKind(objects(), 'Namespace')[0]!.metadata.name;
    const deployments = () => byKind<Workload>(objects(), 'Deployment');
    const deploymentOf = (app: AppDefinition) => {
      const found = deployments().find((deployment) => deployment.metadata.name === app.name);
      if (!found) throw new Error(`${overlay}: no Deployment ${app.name}`);
      return found;
    };
    const serviceOf = (name: string) =>
      byKind<KubeObject & { spec: Record<string, unknown> }>(objects(), 'Service').find(
        (service) => service.metadata.name === name,
      );
    const configMap = () => {
      const maps = byKind<KubeObject & { data: Record<string, string> }>(objects(), 'ConfigMap');
      expect(maps.map((map) => map.metadata.name.replace(/-[a-z0-9]{10}$/, ''))).toEqual([
        CONFIG_NAME,
      ]);
      return maps[0]!;
    };
    const secretsInOverlay = () =>
      byKind<KubeObject & { data?: Record<string, string> }>(objects(), 'Secret');
    const podOf = (name: string): Endpoint & { kind: 'pod' } => {
      const workload = [...deployments(), ...byKind<Workload>(objects(), 'Job')].find(
        (candidate) => candidate.metadata.name === name,
      );
      if (!workload) throw new Error(`no workload ${name}`);
      return {
        kind: 'pod',
        namespace: namespace(),
        namespaceLabels: { [NAME_LABEL]: namespace() },
        labels: workload.spec.template.metadata.labels,
      };
    };

    /** A container's environment with every reference resolved (secrets from the example). */
    function resolvedEnv(container: Container): Record<string, string> {
      const env: Record<string, string> = {};
      for (const variable of container.env ?? []) {
        if (variable.value !== undefined) {
          env[variable.name] = variable.value;
          continue;
        }
        const { configMapKeyRef, secretKeyRef, ...other } = variable.valueFrom ?? {};
        expect(
          Object.keys(other),
          `${variable.name}: only ConfigMap and Secret references`,
        ).toEqual([]);
        if (configMapKeyRef) {
          expect(configMapKeyRef.name).toBe(configMap().metadata.name);
          const value = configMap().data[configMapKeyRef.key];
          if (value === undefined) {
            expect(
              configMapKeyRef.optional,
              `${CONFIG_NAME} has no key ${configMapKeyRef.key}`,
            ).toBe(true);
          } else env[variable.name] = value;
        } else if (secretKeyRef) {
          const generated = secretsInOverlay().find(
            (secret) => secret.metadata.name === secretKeyRef.name,
          );
          // dev generates the Secret (name with a content hash); prod references one made outside git.
          expect(secretKeyRef.name.replace(/-[a-z0-9]{10}$/, ''), variable.name).toBe(SECRET_NAME);
          const value = generated
            ? Buffer.from(generated.data?.[secretKeyRef.key] ?? '', 'base64').toString('utf8') ||
              undefined
            : secretKeys[secretKeyRef.key];
          if (value === undefined) {
            expect(secretKeyRef.optional, `${SECRET_NAME} has no key ${secretKeyRef.key}`).toBe(
              true,
            );
          } else env[variable.name] = value;
        } else {
          throw new Error(`${variable.name} has neither a value nor a reference`);
        }
      }
      return env;
    }

    it('renders objects that are all valid against the Kubernetes API schemas', () => {
      expect(objects().length).toBeGreaterThan(30);
      const problems = objects().flatMap((object) =>
        schemaErrors(object).map((error) => `${describeObject(object)}: ${error}`),
      );
      expect(problems).toEqual([]);
      const names = objects().map(
        (object) => `${object.kind}/${object.metadata.namespace ?? ''}/${object.metadata.name}`,
      );
      expect(new Set(names).size, 'duplicate objects').toBe(names.length);
    });

    it('puts everything in its own namespace, which enforces the restricted Pod Security Standard', () => {
      const namespaces = byKind(objects(), 'Namespace');
      expect(namespaces).toHaveLength(1);
      expect(namespaces[0]!.metadata.labels?.['pod-security.kubernetes.io/enforce']).toBe(
        'restricted',
      );
      for (const object of objects()) {
        if (object.kind !== 'Namespace')
          expect(object.metadata.namespace, describeObject(object)).toBe(namespace());
      }
    });

    it('runs every container from the one image, at the tag (or digest) the overlay sets', () => {
      const kustomization = parseYaml(overlayFile(overlay, 'kustomization.yaml')) as {
        images?: { name: string; newTag?: string; digest?: string }[];
      };
      const setting = kustomization.images?.find((image) => image.name === IMAGE);
      expect(setting?.newTag ?? setting?.digest, `${overlay} sets the image tag`).toBeTruthy();
      const images = new Set<string>();
      for (const { owner, spec } of podSpecs(objects())) {
        for (const container of [...spec.containers, ...(spec.initContainers ?? [])]) {
          const image = container.image;
          const digest = /@sha256:[0-9a-f]{64}$/.test(image);
          const tag = /:([\w][\w.-]{0,127})$/.exec(image.replace(/@sha256:.*$/, ''))?.[1];
          expect(digest || tag !== undefined, `${owner}: ${image} has no tag`).toBe(true);
          expect(tag, `${owner}: ${image}`).not.toBe('latest');
          expect(tag, `${owner}: ${image} keeps the base placeholder`).not.toBe(BASE_TAG);
          images.add(image);
        }
      }
      expect([...images]).toHaveLength(1);
    });

    it('hardens every pod: non-root (the node user), read-only root, no privilege escalation, no capabilities, RuntimeDefault seccomp, no API token', () => {
      for (const { owner, spec } of podSpecs(objects())) {
        expect(spec.automountServiceAccountToken, `${owner} automountServiceAccountToken`).toBe(
          false,
        );
        expect(spec.enableServiceLinks, `${owner} enableServiceLinks`).toBe(false);
        const volumes = new Map((spec.volumes ?? []).map((volume) => [volume.name, volume]));
        for (const container of [...spec.containers, ...(spec.initContainers ?? [])]) {
          const where = `${owner} ${container.name}`;
          const effective = { ...spec.securityContext, ...container.securityContext };
          expect(effective.runAsNonRoot, `${where} runAsNonRoot`).toBe(true);
          expect(effective.runAsUser, `${where} runAsUser (the image's node user)`).toBe(1000);
          expect(effective.seccompProfile?.type, `${where} seccompProfile`).toBe('RuntimeDefault');
          expect(
            container.securityContext?.readOnlyRootFilesystem,
            `${where} readOnlyRootFilesystem`,
          ).toBe(true);
          expect(
            container.securityContext?.allowPrivilegeEscalation,
            `${where} allowPrivilegeEscalation`,
          ).toBe(false);
          expect(container.securityContext?.privileged ?? false, `${where} privileged`).toBe(false);
          expect(
            container.securityContext?.capabilities?.drop,
            `${where} capabilities.drop`,
          ).toContain('ALL');
          expect(
            container.securityContext?.capabilities?.add ?? [],
            `${where} capabilities.add`,
          ).toEqual([]);
          // With a read-only root, /tmp is a (small) emptyDir.
          const tmp = container.volumeMounts?.find((mount) => mount.mountPath === '/tmp');
          expect(
            tmp && volumes.get(tmp.name)?.emptyDir,
            `${where}: /tmp on an emptyDir`,
          ).toBeTruthy();
        }
      }
    });

    it('gives every container CPU and memory requests and limits (requests within limits)', () => {
      for (const { owner, spec } of podSpecs(objects())) {
        for (const container of spec.containers) {
          const where = `${owner} ${container.name}`;
          for (const resource of ['cpu', 'memory']) {
            const request = container.resources?.requests?.[resource];
            const limit = container.resources?.limits?.[resource];
            expect(request, `${where} requests.${resource}`).toBeDefined();
            expect(limit, `${where} limits.${resource}`).toBeDefined();
            expect(parseQuantity(request!), `${where} ${resource}`).toBeLessThanOrEqual(
              parseQuantity(limit!),
            );
          }
        }
      }
    });

    it('has a Deployment per app (and nothing else), running the app like docker-compose.yml', () => {
      expect(
        deployments()
          .map((deployment) => deployment.metadata.name)
          .sort(),
      ).toEqual(APPS.map((app) => app.name).sort());
      for (const app of APPS) {
        const container = appContainer(deploymentOf(app));
        expect(container.args, app.name).toBeUndefined();
        expect(container.command?.join(' '), app.name).toMatch(
          new RegExp(`^node (--[\\w-]+ )*${app.dir}/dist/main\\.js$`),
        );
      }
    });

    it('runs the migration as a Job, selected with the config objects by the pre-rollout step of docs/operations.md', () => {
      const jobs = byKind<Workload>(objects(), 'Job');
      expect(jobs.map((job) => job.metadata.name)).toEqual(['platform-migrate']);
      const job = jobs[0]!;
      const container = job.spec.template.spec.containers[0]!;
      expect(container.command?.join(' ')).toMatch(
        /^node (--[\w-]+ )*prisma\/dist\/migrate\.js deploy$/,
      );
      expect(job.spec.template.spec.restartPolicy).toBe('Never');
      const databaseUrl = container.env?.find((env) => env.name === 'DATABASE_URL');
      expect(databaseUrl?.valueFrom?.secretKeyRef, 'DATABASE_URL from the Secret').toBeDefined();
      expect(new URL(resolvedEnv(container)['DATABASE_URL']!).protocol).toMatch(/^postgres(ql)?:$/);

      // `kubectl apply -k OVERLAY -l 'app.kubernetes.io/component in (config,migration)'`
      const docs = readFileSync(join(REPO_ROOT, 'docs/operations.md'), 'utf8');
      expect(docs).toContain("-l 'app.kubernetes.io/component in (config,migration)'");
      const selected = objects().filter((object) =>
        ['config', 'migration'].includes(
          object.metadata.labels?.['app.kubernetes.io/component'] ?? '',
        ),
      );
      const names = selected.map(describeObject);
      expect(names).toContain(`Job/${job.metadata.name}`);
      expect(names).toContain(`Namespace/${namespace()}`);
      expect(names).toContain(`ConfigMap/${configMap().metadata.name}`);
      for (const secret of secretsInOverlay()) expect(names).toContain(describeObject(secret));
      // Nothing that rolls out the apps is in that first step.
      expect(
        selected.filter(
          (object) =>
            object.kind !== 'Job' &&
            object.kind !== 'Namespace' &&
            object.kind !== 'ConfigMap' &&
            object.kind !== 'Secret',
        ),
      ).toEqual([]);
    });

    describe.each(APPS)('$name', (app) => {
      const deployment = () => deploymentOf(app);
      const container = () => appContainer(deployment());
      const module = () => modules.get(app.name)!;

      it('sets exactly the variables its environment module reads, none it does not, all valid together', () => {
        const variables = (container().env ?? []).map((env) => env.name);
        expect(container().envFrom, 'envFrom hides which variables an app gets').toBeUndefined();
        expect(new Set(variables).size, 'a variable set twice').toBe(variables.length);
        // Its environment module's, and the OpenTelemetry ones @platform/telemetry reads first.
        const known: string[] = [
          ...Object.keys(module().shape),
          ...TELEMETRY_VARIABLES,
          ...(app.kind === 'gateway' ? EDGE_TELEMETRY_VARIABLES : []),
        ];
        expect(
          variables.filter((name) => !known.includes(name)),
          'not read by the app',
        ).toEqual([]);
        const env = resolvedEnv(container());
        for (const [name, schema] of Object.entries(module().shape)) {
          const { required, fallback } = unsetValue(schema as z.ZodType);
          if (required) expect(env[name], `${name} is required`).toBeDefined();
          // A default that points at this machine (127.0.0.1) is wrong in a pod: set it.
          if (typeof fallback === 'string' && /127\.0\.0\.1|localhost/.test(fallback)) {
            expect(variables, `${name} defaults to ${fallback}`).toContain(name);
          }
        }
        // The module's own parse, with its cross-variable rules (production needs SMTP_URL...).
        expect(() => parseEnv(module().shape, env, module().rules)).not.toThrow();
        expect(env['NODE_ENV']).toBe('production');
      });

      it('takes the tracing settings from the ConfigMap (off while the endpoint is empty)', () => {
        for (const name of ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_RESOURCE_ATTRIBUTES']) {
          const variable = (container().env ?? []).find((env) => env.name === name);
          expect(variable?.valueFrom?.configMapKeyRef?.key, name).toBe(name);
        }
        const env = resolvedEnv(container());
        expect(env['OTEL_EXPORTER_OTLP_ENDPOINT']).toBe('');
        expect(env['OTEL_RESOURCE_ATTRIBUTES']).toMatch(/^deployment\.environment\.name=/);
        if (app.kind === 'gateway') expect(env['OTEL_TRUST_CLIENT_TRACEPARENT']).toBe('false');
      });

      it('takes every secret from the Secret by reference, never as a value or from the ConfigMap', () => {
        for (const variable of container().env ?? []) {
          if (!looksSecret(variable.name, variable.value ?? undefined)) continue;
          expect(variable.value, `${variable.name} is inlined`).toBeUndefined();
          expect(variable.valueFrom?.secretKeyRef, `${variable.name} from a Secret`).toBeDefined();
        }
        for (const [key, value] of Object.entries(configMap().data)) {
          expect(looksSecret(key, value), `${CONFIG_NAME} holds ${key}`).toBe(false);
        }
      });

      it('listens on all interfaces, on a named container port its Service targets', () => {
        const env = resolvedEnv(container());
        const hostVariable = { service: 'GRPC_HOST', subgraph: 'HOST', gateway: 'GATEWAY_HOST' }[
          app.kind
        ];
        expect(env[hostVariable]).toBe('0.0.0.0');
        const port = listenPort(app, container());
        const portName = app.kind === 'service' ? 'grpc' : 'http';
        expect(container().ports).toContainEqual({ name: portName, containerPort: port });

        const service = serviceOf(app.name);
        expect(service, `Service ${app.name}`).toBeDefined();
        const spec = service!.spec as {
          clusterIP?: string;
          type?: string;
          selector: Record<string, string>;
          ports: { port: number; targetPort: string | number }[];
        };
        // The Service selects this app's pods and nobody else's.
        expect(
          selectorMatches(
            { matchLabels: spec.selector },
            deployment().spec.template.metadata.labels,
          ),
        ).toBe(true);
        for (const other of deployments()) {
          if (other !== deployment()) {
            expect(
              selectorMatches({ matchLabels: spec.selector }, other.spec.template.metadata.labels),
            ).toBe(false);
          }
        }
        expect(spec.ports).toEqual([expect.objectContaining({ port, targetPort: portName })]);
        if (app.kind === 'service') {
          // Headless: DNS returns every pod, the clients' round_robin spreads the calls.
          expect(spec.clusterIP, `${app.name}: headless`).toBe('None');
        } else {
          expect(spec.type ?? 'ClusterIP').toBe('ClusterIP');
          expect(spec.clusterIP).not.toBe('None');
        }
      });

      it("reaches every app it calls through that app's Service: dns:/// for gRPC, http for subgraphs", () => {
        const env = resolvedEnv(container());
        const variables = Object.keys(module().shape).filter((name) =>
          /_(?:SERVICE_ADDR|SUBGRAPH_URL)$/.test(name),
        );
        if (app.kind !== 'service') expect(variables).toContain('AUTH_SERVICE_ADDR');
        for (const variable of variables) {
          const target = APPS.find((other) => other.addressVariable === variable);
          expect(target, `no app is found through ${variable}`).toBeDefined();
          const port = listenPort(target!, appContainer(deploymentOf(target!)));
          expect(env[variable], `${app.name} ${variable}`).toBe(
            target!.kind === 'subgraph'
              ? `http://${target!.name}:${port}/graphql`
              : `dns:///${target!.name}:${port}`,
          );
        }
      });

      it('has startup, readiness and liveness probes on the right endpoints', () => {
        const { startupProbe, readinessProbe, livenessProbe } = container();
        expect(startupProbe, 'startupProbe').toBeDefined();
        expect(readinessProbe, 'readinessProbe').toBeDefined();
        expect(livenessProbe, 'livenessProbe').toBeDefined();
        const port = listenPort(app, container());
        if (app.kind === 'service') {
          // Ready: the kubelet's native gRPC probe against the standard health service (its
          // overall status: taking calls, not draining; dependencies are reported by name only).
          // Alive: the process accepts connections, so a dependency outage does not restart it.
          expect(readinessProbe!.grpc?.port).toBe(port);
          for (const probe of [startupProbe, livenessProbe]) {
            expect(probe!.grpc, 'a dependency outage would restart the pod').toBeUndefined();
            expect(probe!.tcpSocket).toEqual({ port: 'grpc' });
          }
        } else {
          expect(startupProbe!.httpGet).toEqual({ path: '/health', port: 'http' });
          expect(livenessProbe!.httpGet).toEqual({ path: '/health', port: 'http' });
          // Not /ready: a dependency every pod shares being down would empty the Service.
          expect(readinessProbe!.httpGet).toEqual({ path: '/health', port: 'http' });
        }
      });

      it('drains within its termination grace period (preStop pause + SHUTDOWN_TIMEOUT_MS)', () => {
        const env = resolvedEnv(container());
        const shutdownMs = Number(env['SHUTDOWN_TIMEOUT_MS'] ?? 10_000);
        const pause = container().lifecycle?.preStop?.sleep?.seconds ?? 0;
        const grace = deployment().spec.template.spec.terminationGracePeriodSeconds ?? 30;
        expect(grace).toBeGreaterThan(pause + shutdownMs / 1000);
      });

      it('has a PodDisruptionBudget and, for the gateway and subgraphs, a HorizontalPodAutoscaler', () => {
        const labels = deployment().spec.template.metadata.labels;
        const budgets = byKind<
          KubeObject & {
            spec: { selector: LabelSelector; maxUnavailable?: unknown; minAvailable?: unknown };
          }
        >(objects(), 'PodDisruptionBudget').filter((budget) =>
          selectorMatches(budget.spec.selector, labels),
        );
        expect(budgets, `${app.name}: one PDB`).toHaveLength(1);
        expect(budgets[0]!.spec.maxUnavailable ?? budgets[0]!.spec.minAvailable).toBeDefined();

        const autoscalers = byKind<
          KubeObject & {
            spec: {
              scaleTargetRef: { kind: string; name: string };
              minReplicas?: number;
              maxReplicas: number;
            };
          }
        >(objects(), 'HorizontalPodAutoscaler').filter(
          (hpa) =>
            hpa.spec.scaleTargetRef.kind === 'Deployment' &&
            hpa.spec.scaleTargetRef.name === app.name,
        );
        let replicas: number;
        if (app.kind === 'service') {
          expect(autoscalers).toEqual([]);
          replicas = deployment().spec.replicas ?? 1;
        } else {
          expect(autoscalers, `${app.name}: one HPA`).toHaveLength(1);
          // The HPA owns the count: a `replicas` in the manifest would reset it on every apply.
          expect(deployment().spec.replicas, `${app.name}: replicas beside an HPA`).toBeUndefined();
          replicas = autoscalers[0]!.spec.minReplicas ?? 1;
          expect(autoscalers[0]!.spec.maxReplicas).toBeGreaterThan(replicas);
        }
        if (overlay === 'prod') expect(replicas, `${app.name} replicas`).toBeGreaterThanOrEqual(2);
        else expect(replicas, `${app.name} replicas`).toBe(1);
      });
    });

    it('sends outside traffic to the gateway only, over TLS, with long-lived WebSocket timeouts', () => {
      const ingresses = byKind<
        KubeObject & {
          spec: {
            tls?: { hosts: string[] }[];
            rules: {
              host?: string;
              http: { paths: { backend: { service: { name: string } } }[] };
            }[];
          };
        }
      >(objects(), 'Ingress');
      expect(ingresses).toHaveLength(1);
      const ingress = ingresses[0]!;
      const backends = ingress.spec.rules.flatMap((rule) =>
        rule.http.paths.map((path) => path.backend.service.name),
      );
      expect(new Set(backends)).toEqual(new Set(['gateway']));
      const tlsHosts = (ingress.spec.tls ?? []).flatMap((tls) => tls.hosts);
      for (const rule of ingress.spec.rules)
        expect(tlsHosts, `TLS for ${rule.host}`).toContain(rule.host);
      const annotations = ingress.metadata.annotations ?? {};
      for (const timeout of ['proxy-read-timeout', 'proxy-send-timeout']) {
        expect(
          Number(annotations[`nginx.ingress.kubernetes.io/${timeout}`]),
          timeout,
        ).toBeGreaterThanOrEqual(3600);
      }
      // No other way in: only ClusterIP / headless Services.
      for (const service of byKind<KubeObject & { spec: { type?: string } }>(
        objects(),
        'Service',
      )) {
        expect(service.spec.type ?? 'ClusterIP', describeObject(service)).toBe('ClusterIP');
      }
    });

    it('keeps secrets out of the manifests: prod references a Secret made outside git, dev generates it from the git-ignored file', () => {
      const secrets = secretsInOverlay();
      if (overlay === 'prod') expect(secrets).toEqual([]);
      else {
        expect(secrets).toHaveLength(1);
        expect(secrets[0]!.metadata.name).toMatch(new RegExp(`^${SECRET_NAME}-[a-z0-9]{10}$`));
        expect(Object.keys(secrets[0]!.data ?? {}).sort()).toEqual(Object.keys(secretKeys).sort());
      }
      // Every key of the example is used by someone, and every key used is in the example.
      const used = new Set(
        podSpecs(objects()).flatMap(({ spec }) =>
          spec.containers.flatMap((container) =>
            (container.env ?? []).flatMap((env) => env.valueFrom?.secretKeyRef?.key ?? []),
          ),
        ),
      );
      expect([...used].sort()).toEqual(Object.keys(secretKeys).sort());
    });

    describe('NetworkPolicies', () => {
      const policies = () => new NetworkPolicies(objects(), namespace());
      const outside = (namespaceName: string, labels: Record<string, string>): Endpoint => ({
        kind: 'pod',
        namespace: namespaceName,
        namespaceLabels: { [NAME_LABEL]: namespaceName },
        labels,
      });
      const ingressController = () => outside('ingress-nginx', { [APP_LABEL]: 'ingress-nginx' });

      /** caller -> callee, from the address variables each Deployment sets. */
      function callGraph(): Map<string, Set<string>> {
        const calls = new Map<string, Set<string>>();
        for (const app of APPS) {
          const env = resolvedEnv(appContainer(deploymentOf(app)));
          const callees = new Set<string>();
          for (const [name, value] of Object.entries(env)) {
            if (!/_(?:SERVICE_ADDR|SUBGRAPH_URL)$/.test(name)) continue;
            const host = /^(?:dns:\/\/\/|https?:\/\/)?([\w.-]+):\d+/.exec(value)?.[1];
            expect(host, `${app.name} ${name}=${value}`).toBeDefined();
            callees.add(host!.split('.')[0]!);
          }
          calls.set(app.name, callees);
        }
        return calls;
      }

      it('deny everything by default', () => {
        expect(policies().hasDefaultDeny(namespace())).toBe(true);
      });

      it('admit exactly the calls the apps make, and nothing from outside but the ingress controller to the gateway', () => {
        const calls = callGraph();
        const all = [...APPS.map((app) => app.name), 'platform-migrate'];
        for (const target of APPS) {
          const port = listenPort(target, appContainer(deploymentOf(target)));
          for (const source of all) {
            const expected = calls.get(source)?.has(target.name) ?? false;
            expect(
              policies().allows(podOf(source), podOf(target.name), port),
              `${source} -> ${target.name}:${port}`,
            ).toBe(expected);
          }
          // Prometheus's scrapes of the metrics port are checked on their own (below).
          const fromOutside = policies().outsideIngress(podOf(target.name), [
            metricsPort(target, appContainer(deploymentOf(target))),
          ]);
          if (target.kind === 'gateway') {
            expect(policies().allows(ingressController(), podOf(target.name), port)).toBe(true);
            expect(policies().ingressAllowed({ kind: 'external' }, podOf(target.name), port)).toBe(
              false,
            );
            expect(
              policies().ingressAllowed(outside('default', {}), podOf(target.name), port),
            ).toBe(false);
            expect(fromOutside).toHaveLength(1);
          } else {
            expect(fromOutside, `${target.name} admits traffic from outside the namespace`).toEqual(
              [],
            );
          }
        }
      });

      it("let Prometheus (monitoring namespace) scrape every app's metrics port, and nothing else", () => {
        const prometheus = outside('monitoring', { [APP_LABEL]: 'prometheus' });
        for (const target of APPS) {
          const container = appContainer(deploymentOf(target));
          const port = metricsPort(target, container);
          expect(container.ports, target.name).toContainEqual({
            name: 'metrics',
            containerPort: port,
          });
          const annotations = deploymentOf(target).spec.template.metadata.annotations ?? {};
          expect(annotations['prometheus.io/port'], target.name).toBe(String(port));
          expect(annotations['prometheus.io/scrape'], target.name).toBe('true');
          expect(
            policies().ingressAllowed(prometheus, podOf(target.name), port),
            `prometheus -> ${target.name}:${port}`,
          ).toBe(true);
          const appPort = listenPort(target, container);
          expect(
            policies().ingressAllowed(prometheus, podOf(target.name), appPort),
            `prometheus -> ${target.name}:${appPort}`,
          ).toBe(false);
          // Nobody else outside the namespace; inside it, no app scrapes another.
          expect(policies().ingressAllowed(outside('default', {}), podOf(target.name), port)).toBe(
            false,
          );
          for (const source of APPS)
            expect(
              policies().allows(podOf(source.name), podOf(target.name), port),
              `${source.name} -> ${target.name}:${port}`,
            ).toBe(false);
        }
      });

      it('let each pod reach DNS and the stores its environment points at, and no other store', () => {
        const dns = outside('kube-system', { 'k8s-app': 'kube-dns' });
        const workloads = [...deployments(), ...byKind<Workload>(objects(), 'Job')];
        for (const workload of workloads) {
          const pod = podOf(workload.metadata.name);
          const where = workload.metadata.name;
          expect(policies().egressAllowed(pod, dns, 53, 'UDP'), `${where} -> DNS`).toBe(true);
          const env = resolvedEnv(workload.spec.template.spec.containers[0]!);
          for (const [variable, port] of Object.entries(STORE_PORTS)) {
            expect(
              policies().egressAllowed(pod, { kind: 'external' }, port),
              `${where} -> ${variable} (:${port})`,
            ).toBe(variable in env);
          }
          // Traces go to a collector in the monitoring namespace, nowhere else (apps only).
          const isApp = APPS.some((app) => app.name === where);
          expect(
            policies().egressAllowed(pod, outside('monitoring', {}), 4318),
            `${where} -> OTLP collector`,
          ).toBe(isApp);
          expect(
            policies().egressAllowed(pod, { kind: 'external' }, 4318),
            `${where} -> :4318`,
          ).toBe(false);
          // Nothing else leaves the cluster (HTTPS to anywhere, say).
          expect(policies().egressAllowed(pod, { kind: 'external' }, 443), `${where} -> :443`).toBe(
            false,
          );
        }
      });
    });
  });
});

if (!kubectl) {
  describe('deploy/kubernetes', () => {
    it.skip('kubectl is not installed: the overlays cannot be rendered, so the manifests were not checked', () => {});
  });
}
