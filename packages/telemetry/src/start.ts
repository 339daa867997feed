import { hostname } from 'node:os';
import { register } from 'node:module';
import type { Context, TextMapGetter, TextMapPropagator, TextMapSetter } from '@opentelemetry/api';
import { setTelemetryShutdown } from './tracing';

export interface TelemetryOptions {
  /** `service.name` of every span (`OTEL_SERVICE_NAME` overrides it). */
  serviceName: string;
  /**
   * The process takes requests from outside the platform (the gateway): a caller's
   * `traceparent` is honoured unless `OTEL_TRUST_CLIENT_TRACEPARENT=false`.
   */
  edge?: boolean;
  /**
   * The process environment (the OTEL_* variables of the OpenTelemetry specification, read
   * here and by the SDK itself, before the app's own environment module runs).
   */
  env: NodeJS.ProcessEnv;
}

/** Requests that are not operations: probes and scrapes make no traces. */
const UNTRACED_PATHS = new Set(['/health', '/ready', '/metrics']);

/**
 * Starts tracing when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
 * is set: a tracer provider exporting with OTLP/HTTP (JSON) through a batch span processor,
 * W3C trace context propagation, and the instrumentations of HTTP (server and client),
 * undici, gRPC, pg, ioredis and graphql. Must run before the app's modules are imported
 * (the build's entry does it, then imports the app): instrumentations patch modules as they
 * load. Without an endpoint it does nothing at all: no provider, no hooks, no SDK loaded.
 * Resolves to whether tracing is on.
 */
export async function startTelemetry(options: TelemetryOptions): Promise<boolean> {
  const { env } = options;
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!endpoint || env.OTEL_SDK_DISABLED === 'true' || env.OTEL_TRACES_EXPORTER === 'none')
    return false;

  // ESM: modules imported from now on pass through import-in-the-middle, limited to the
  // modules an instrumentation asked for.
  const { createAddHookMessageChannel } = await import('import-in-the-middle');
  const { registerOptions, waitForAllMessagesAcknowledged } = createAddHookMessageChannel();
  register('import-in-the-middle/hook.mjs', import.meta.url, registerOptions);

  const [
    { W3CTraceContextPropagator },
    { NodeTracerProvider, BatchSpanProcessor },
    { defaultResource, resourceFromAttributes, detectResources, envDetector },
    { OTLPTraceExporter },
    { registerInstrumentations },
    { HttpInstrumentation },
    { UndiciInstrumentation },
    { GrpcInstrumentation },
    { PgInstrumentation },
    { IORedisInstrumentation },
    { GraphQLInstrumentation },
  ] = await Promise.all([
    import('@opentelemetry/core'),
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/instrumentation'),
    import('@opentelemetry/instrumentation-http'),
    import('@opentelemetry/instrumentation-undici'),
    import('@opentelemetry/instrumentation-grpc'),
    import('@opentelemetry/instrumentation-pg'),
    import('@opentelemetry/instrumentation-ioredis'),
    import('@opentelemetry/instrumentation-graphql'),
  ]);

  const resource = defaultResource()
    .merge(
      resourceFromAttributes({
        'service.name': options.serviceName,
        'service.namespace': 'platform',
        'service.instance.id': `${hostname()}:${process.pid}`,
      }),
    )
    .merge(detectResources({ detectors: [envDetector] }));
  const provider = new NodeTracerProvider({
    resource,
    // Batches spans; OTEL_BSP_SCHEDULE_DELAY, OTEL_BSP_MAX_QUEUE_SIZE etc. tune it.
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  const trustClient = !options.edge || env.OTEL_TRUST_CLIENT_TRACEPARENT !== 'false';
  const w3c = new W3CTraceContextPropagator();
  provider.register({ propagator: trustClient ? w3c : new InjectOnlyPropagator(w3c) });
  setTelemetryShutdown(() => provider.shutdown());

  registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (request) =>
          UNTRACED_PATHS.has((request.url ?? '').split('?')[0] ?? ''),
        // Outgoing HTTP outside an operation (JWKS refreshes, the exporter itself) is noise.
        requireParentforOutgoingSpans: true,
      }),
      new UndiciInstrumentation({
        requireParentforSpans: true,
        ignoreRequestHook: (request) => UNTRACED_PATHS.has(request.path.split('?')[0] ?? ''),
      }),
      new GrpcInstrumentation({ ignoreGrpcMethods: ['Check', 'Watch'] }),
      // Background work (the outbox relay's polling, cache warm-ups) makes no root spans.
      new PgInstrumentation({ requireParentSpan: true, ignoreConnectSpans: true }),
      new IORedisInstrumentation({ requireParentSpan: true }),
      new GraphQLInstrumentation({
        ignoreTrivialResolveSpans: true,
        mergeItems: true,
        depth: 2,
      }),
    ],
  });
  await waitForAllMessagesAcknowledged();
  return true;
}

/**
 * Writes trace context on outgoing calls but ignores it on incoming requests: with
 * `OTEL_TRUST_CLIENT_TRACEPARENT=false` the gateway starts a new trace for every client
 * operation whatever `traceparent` the client sent.
 */
class InjectOnlyPropagator implements TextMapPropagator {
  constructor(private readonly inner: TextMapPropagator) {}
  inject(context: Context, carrier: unknown, setter: TextMapSetter): void {
    this.inner.inject(context, carrier, setter);
  }
  extract(context: Context, _carrier: unknown, _getter: TextMapGetter): Context {
    return context;
  }
  fields(): string[] {
    return this.inner.fields();
  }
}
