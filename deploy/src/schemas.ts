// Validation of rendered objects against the Kubernetes OpenAPI schemas, as compiled by the
// `kubernetes-models` package (4.5.x: the API of Kubernetes 1.31 and later, e.g. the preStop
// `sleep` action and PodDisruptionBudget's unhealthyPodEvictionPolicy). Its validators check
// types, formats, enums and required fields; like the API server's non-strict mode they accept
// unknown fields, so the policy checks in kubernetes.spec.ts read every field they rely on.
import { Deployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { Job } from 'kubernetes-models/batch/v1';
import { Ingress, NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Namespace, Secret, Service } from 'kubernetes-models/v1';
import type { KubeObject } from './manifests';

interface Validatable {
  validate(): void;
}

/** The kinds the manifests may contain, by `apiVersion/kind`. Anything else is refused. */
const MODELS: Record<string, new (data: never) => Validatable> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Namespace': Namespace,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'batch/v1/Job': Job,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'networking.k8s.io/v1/Ingress': Ingress,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
};

/**
 * kustomize's secretGenerator wraps long base64 values over several lines; the API server's
 * decoder skips the line breaks, the schema's "byte" format does not.
 */
function normalised(object: KubeObject): KubeObject {
  const data = object['data'] as Record<string, string> | undefined;
  if (object.kind !== 'Secret' || !data) return object;
  return {
    ...object,
    data: Object.fromEntries(
      Object.entries(data).map(([key, value]) => [key, value.replace(/\s/g, '')]),
    ),
  };
}

/** The schema errors of an object, or of its kind being unknown; empty when it is valid. */
export function schemaErrors(object: KubeObject): string[] {
  const Model = MODELS[`${object.apiVersion}/${object.kind}`];
  if (!Model) return [`no schema for ${object.apiVersion} ${object.kind} (not an allowed kind)`];
  try {
    new Model(normalised(object) as never).validate();
    return [];
  } catch (error) {
    return [error instanceof Error ? error.message : String(error)];
  }
}
