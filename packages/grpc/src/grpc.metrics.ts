import { status } from '@grpc/grpc-js';
import { counter, histogram, secondsSince } from '@platform/metrics';

const LABELS = ['grpc_service', 'grpc_method', 'grpc_code'] as const;
const DURATION_LABELS = ['grpc_service', 'grpc_method'] as const;

const serverHandled = counter({
  name: 'grpc_server_handled_total',
  help: 'gRPC calls this server completed, by service, method and status code.',
  labelNames: LABELS,
});
const serverSeconds = histogram({
  name: 'grpc_server_handling_seconds',
  help: 'Time this server took to answer a gRPC call (credential check to response), in seconds.',
  labelNames: DURATION_LABELS,
});
const clientHandled = counter({
  name: 'grpc_client_handled_total',
  help: 'gRPC calls this app made that completed, by service, method and status code.',
  labelNames: LABELS,
});
const clientSeconds = histogram({
  name: 'grpc_client_handling_seconds',
  help: 'Time a gRPC call this app made took until its answer or failure, in seconds.',
  labelNames: DURATION_LABELS,
});

/** `OK`, `UNAVAILABLE`, ... for a numeric status code. */
const codeNames: readonly string[] = Object.entries(status)
  .filter(([, value]) => typeof value === 'number')
  .sort(([, a], [, b]) => Number(a) - Number(b))
  .map(([name]) => name);

type Recorder = (started: number, code: number) => void;

/**
 * A recorder for one method (`/pkg.Service/Method`), its label children bound once: the hot
 * path only picks the child of the status code.
 */
function recorder(
  path: string,
  handled: typeof serverHandled,
  seconds: typeof serverSeconds,
): Recorder {
  const [, service = 'unknown', method = 'unknown'] = path.split('/');
  const duration = seconds.labels(service, method);
  const byCode = new Map<number, ReturnType<typeof handled.labels>>();
  return (started, code) => {
    let child = byCode.get(code);
    if (!child) {
      child = handled.labels(service, method, codeNames[code] ?? String(code));
      byCode.set(code, child);
    }
    child.inc();
    duration.observe(secondsSince(started));
  };
}

export const serverCallRecorder = (path: string) => recorder(path, serverHandled, serverSeconds);
export const clientCallRecorder = (path: string) => recorder(path, clientHandled, clientSeconds);
