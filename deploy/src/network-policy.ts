// A small evaluator of Kubernetes NetworkPolicies (networking.k8s.io/v1), enough to ask the
// rendered manifests "may this pod reach that one on this port?" without a cluster. It follows
// the API's rules: a pod is isolated for a direction once any policy selecting it names that
// direction; then a connection is allowed when some rule of such a policy admits the peer and
// the port. Supported: podSelector / namespaceSelector (matchLabels and matchExpressions),
// ipBlock (as "outside the cluster"), numeric ports with protocol and endPort.
import type { KubeObject } from './manifests';

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

interface Peer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: { cidr: string; except?: string[] };
}

interface PortRule {
  port?: number | string;
  endPort?: number;
  protocol?: string;
}

interface NetworkPolicySpec {
  podSelector: LabelSelector;
  policyTypes?: ('Ingress' | 'Egress')[];
  ingress?: { from?: Peer[]; ports?: PortRule[] }[];
  egress?: { to?: Peer[]; ports?: PortRule[] }[];
}

/** A pod in the cluster (its namespace's labels and its own), or anything outside it. */
export type Endpoint =
  | {
      kind: 'pod';
      namespace: string;
      namespaceLabels: Record<string, string>;
      labels: Record<string, string>;
    }
  | { kind: 'external' };

export function selectorMatches(
  selector: LabelSelector | undefined,
  labels: Record<string, string>,
) {
  if (!selector) return true;
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[key] !== value) return false;
  }
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const has = key in labels;
    const ok =
      operator === 'In'
        ? has && values.includes(labels[key]!)
        : operator === 'NotIn'
          ? !has || !values.includes(labels[key]!)
          : operator === 'Exists'
            ? has
            : operator === 'DoesNotExist'
              ? !has
              : false;
    if (!ok) return false;
  }
  return true;
}

function policyTypes(spec: NetworkPolicySpec): ('Ingress' | 'Egress')[] {
  return spec.policyTypes ?? (spec.egress ? ['Ingress', 'Egress'] : ['Ingress']);
}

/** Whether `peer`, written in a policy of `policyNamespace`, matches `endpoint`. */
function peerMatches(peer: Peer, policyNamespace: string, endpoint: Endpoint): boolean {
  if (peer.ipBlock) return endpoint.kind === 'external';
  if (endpoint.kind === 'external') return false;
  const namespaceOk = peer.namespaceSelector
    ? selectorMatches(peer.namespaceSelector, endpoint.namespaceLabels)
    : endpoint.namespace === policyNamespace;
  return namespaceOk && selectorMatches(peer.podSelector, endpoint.labels);
}

function portMatches(rules: PortRule[] | undefined, port: number, protocol: string): boolean {
  if (!rules || rules.length === 0) return true;
  return rules.some((rule) => {
    if ((rule.protocol ?? 'TCP') !== protocol) return false;
    if (rule.port === undefined) return true;
    if (typeof rule.port === 'string') return false; // named ports: not used here
    return rule.endPort ? port >= rule.port && port <= rule.endPort : port === rule.port;
  });
}

export class NetworkPolicies {
  private readonly policies: { namespace: string; spec: NetworkPolicySpec; name: string }[];

  constructor(objects: readonly KubeObject[], defaultNamespace: string) {
    this.policies = objects
      .filter((object) => object.kind === 'NetworkPolicy')
      .map((object) => ({
        name: object.metadata.name,
        namespace: object.metadata.namespace ?? defaultNamespace,
        spec: object['spec'] as NetworkPolicySpec,
      }));
  }

  get names(): string[] {
    return this.policies.map((policy) => policy.name);
  }

  /** The policies that select a pod for a direction. */
  private selecting(pod: Endpoint & { kind: 'pod' }, direction: 'Ingress' | 'Egress') {
    return this.policies.filter(
      (policy) =>
        policy.namespace === pod.namespace &&
        selectorMatches(policy.spec.podSelector, pod.labels) &&
        policyTypes(policy.spec).includes(direction),
    );
  }

  /** May `from` open a connection to `to` on `port`? Both directions must allow it. */
  allows(from: Endpoint, to: Endpoint, port: number, protocol = 'TCP'): boolean {
    return (
      this.egressAllowed(from, to, port, protocol) && this.ingressAllowed(from, to, port, protocol)
    );
  }

  egressAllowed(from: Endpoint, to: Endpoint, port: number, protocol = 'TCP'): boolean {
    if (from.kind === 'external') return true;
    const policies = this.selecting(from, 'Egress');
    if (policies.length === 0) return true;
    return policies.some((policy) =>
      (policy.spec.egress ?? []).some(
        (rule) =>
          portMatches(rule.ports, port, protocol) &&
          (!rule.to ||
            rule.to.length === 0 ||
            rule.to.some((peer) => peerMatches(peer, policy.namespace, to))),
      ),
    );
  }

  ingressAllowed(from: Endpoint, to: Endpoint, port: number, protocol = 'TCP'): boolean {
    if (to.kind === 'external') return true;
    const policies = this.selecting(to, 'Ingress');
    if (policies.length === 0) return true;
    return policies.some((policy) =>
      (policy.spec.ingress ?? []).some(
        (rule) =>
          portMatches(rule.ports, port, protocol) &&
          (!rule.from ||
            rule.from.length === 0 ||
            rule.from.some((peer) => peerMatches(peer, policy.namespace, from))),
      ),
    );
  }

  /**
   * Ingress rules that admit sources outside the pod's namespace (another namespace, an
   * ipBlock, or anyone at all), as "policy: description" lines.
   */
  outsideIngress(
    pod: Endpoint & { kind: 'pod' },
    /** Rules admitting only these ports are not counted (e.g. the metrics port's scrapes). */
    exceptPorts: readonly number[] = [],
  ): string[] {
    const found: string[] = [];
    for (const policy of this.selecting(pod, 'Ingress')) {
      for (const rule of policy.spec.ingress ?? []) {
        const ports = rule.ports ?? [];
        if (
          ports.length > 0 &&
          ports.every((port) => typeof port.port === 'number' && exceptPorts.includes(port.port))
        )
          continue;
        if (!rule.from || rule.from.length === 0) found.push(`${policy.name}: from anyone`);
        for (const peer of rule.from ?? []) {
          if (peer.ipBlock) found.push(`${policy.name}: ipBlock ${peer.ipBlock.cidr}`);
          else if (peer.namespaceSelector)
            found.push(`${policy.name}: namespaces ${JSON.stringify(peer.namespaceSelector)}`);
        }
      }
    }
    return found;
  }

  /** Whether some policy isolates every pod of the namespace both ways and allows nothing. */
  hasDefaultDeny(namespace: string): boolean {
    return this.policies.some(
      (policy) =>
        policy.namespace === namespace &&
        Object.keys(policy.spec.podSelector).length === 0 &&
        policyTypes(policy.spec).includes('Ingress') &&
        policyTypes(policy.spec).includes('Egress') &&
        (policy.spec.ingress ?? []).length === 0 &&
        (policy.spec.egress ?? []).length === 0,
    );
  }
}
